//! The bare baseline's feed over real sockets: consecutive ticks on the
//! scheduled grid, the server's exact bytes, resume, keep-alives, shutdown.

mod support;

use std::time::Duration;

use rstest::rstest;
use server::event::encode_tick;
use server::feed::period_ns;
use support::{assert_on_grid, start_bare, FeedClient, SseClient, Tick, Wire, WsClient, STEP};

#[rstest]
#[case::sse(Wire::Sse)]
#[case::ws(Wire::Ws)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivers_consecutive_ticks_on_the_scheduled_grid(#[case] wire: Wire) {
    let bare = start_bare(|c| c.rate = 50.0).await;
    let mut client = FeedClient::open(wire, bare.addr, None).await;
    let hello = client.next_json().await.expect("a hello");
    assert_eq!(hello["type"], "hello", "{hello}");
    assert_eq!(hello["protocol"], "http/1.1");
    assert_eq!(
        hello["transport"],
        if wire == Wire::Sse { "sse" } else { "ws" }
    );
    assert_eq!(hello["resume"], "none");
    let ticks = client.ticks(20).await;
    assert_on_grid(&ticks, period_ns(50.0));
    assert!(
        ticks[0].id > hello["last_id"].as_u64().unwrap(),
        "live ticks follow the hello"
    );
    let s = bare.shutdown().await.unwrap();
    assert_eq!(s.lagged_closed, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_are_the_servers_bytes() {
    let bare = start_bare(|c| c.payload_bytes = 300).await;
    let mut sse = SseClient::open(bare.addr, "/sse", &[]).await;
    assert_eq!(sse.retry_ms, None);
    let hello = sse.next().await.unwrap();
    assert_eq!(hello.event, "hello");
    assert_eq!(sse.retry_ms, Some(1000));
    let event = sse.next().await.unwrap();
    let tick = Tick::from_json(&serde_json::from_str(&event.data).unwrap()).unwrap();
    let ours = encode_tick(tick.id, tick.sent_unix_ns, 300);
    assert_eq!(event.raw, ours.sse, "the SSE frame, byte for byte");

    let mut ws = WsClient::open(bare.addr, "").await;
    ws.next_json().await.expect("a hello");
    let message = loop {
        match futures_util::StreamExt::next(&mut ws.ws)
            .await
            .unwrap()
            .unwrap()
        {
            tokio_tungstenite::tungstenite::Message::Text(text) => break text,
            _ => continue,
        }
    };
    let tick = Tick::from_json(&serde_json::from_str(&message).unwrap()).unwrap();
    assert_eq!(
        message.as_str(),
        &*encode_tick(tick.id, tick.sent_unix_ns, 300).ws
    );
    bare.shutdown().await.unwrap();
}

#[rstest]
#[case::sse(Wire::Sse)]
#[case::ws(Wire::Ws)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resume_replays_exactly_what_was_missed(#[case] wire: Wire) {
    let bare = start_bare(|c| c.rate = 50.0).await;
    let mut client = FeedClient::open(wire, bare.addr, None).await;
    let last = client.ticks(5).await.last().unwrap().id;
    drop(client);
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut client = FeedClient::open(wire, bare.addr, Some(last)).await;
    let hello = client.next_json().await.unwrap();
    assert_eq!(hello["resume"], "replay", "{hello}");
    assert!(
        hello["last_id"].as_u64().unwrap() > last + 2,
        "ticks were missed: {hello}"
    );
    let ticks = client.ticks(15).await;
    assert_eq!(
        ticks[0].id,
        last + 1,
        "no hole and no duplicate at the seam"
    );
    assert_on_grid(&ticks, period_ns(50.0));
    bare.shutdown().await.unwrap();
}

#[rstest]
#[case::sse(Wire::Sse)]
#[case::ws(Wire::Ws)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_older_than_the_ring_gets_a_gap_first(#[case] wire: Wire) {
    let bare = start_bare(|c| {
        c.rate = 200.0;
        c.replay = 4;
    })
    .await;
    support::wait_stats(bare.addr, "20 ticks", |s| {
        s["last_id"].as_u64().unwrap() > 20
    })
    .await;
    let mut client = FeedClient::open(wire, bare.addr, Some(1)).await;
    assert_eq!(client.next_json().await.unwrap()["resume"], "gap");
    let gap = client.next_json().await.unwrap();
    assert_eq!(gap["type"], "gap", "{gap}");
    assert_eq!(gap["from"], 2);
    let to = gap["to"].as_u64().unwrap();
    let ticks = client.ticks(10).await;
    assert_eq!(
        ticks[0].id,
        to + 1,
        "the ring follows the gap: {gap} then {ticks:?}"
    );
    assert_on_grid(&ticks, period_ns(200.0));
    bare.shutdown().await.unwrap();
}

#[rstest]
#[case::sse(Wire::Sse)]
#[case::ws(Wire::Ws)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odd_resume_ids_start_live(#[case] wire: Wire) {
    let bare = start_bare(|_| {}).await;
    let mut client = FeedClient::open(wire, bare.addr, Some(1_000_000)).await;
    assert_eq!(client.next_json().await.unwrap()["resume"], "future");
    let path_or_query = match wire {
        Wire::Sse => {
            let mut sse = SseClient::open(bare.addr, "/sse?lastEventId=abc", &[]).await;
            sse.next_json().await.unwrap()
        }
        Wire::Ws => WsClient::open(bare.addr, "?lastEventId=abc")
            .await
            .next_json()
            .await
            .unwrap(),
    };
    assert_eq!(path_or_query["resume"], "malformed");
    bare.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_streams_get_keepalives() {
    let bare = start_bare(|c| {
        c.rate = 0.1;
        c.keepalive = Duration::from_millis(100);
    })
    .await;
    let mut sse = SseClient::open(bare.addr, "/sse", &[]).await;
    let mut ws = WsClient::open(bare.addr, "").await;
    // Only the hello and perhaps the first tick come in this second.
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while sse.next().await.is_some() {}
    })
    .await;
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        while ws.next_json().await.is_some() {}
    })
    .await;
    assert!(
        sse.keepalives >= 3,
        "SSE keep-alive comments: {}",
        sse.keepalives
    );
    assert!(ws.pings >= 3, "WebSocket pings: {}", ws.pings);
    bare.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_ends_every_stream() {
    let bare = start_bare(|_| {}).await;
    let mut sse = SseClient::open(bare.addr, "/sse", &[]).await;
    let mut ws = WsClient::open(bare.addr, "").await;
    sse.next().await.unwrap();
    ws.next_json().await.unwrap();
    let stats = tokio::time::timeout(STEP, bare.shutdown())
        .await
        .expect("shutdown within the step")
        .expect("every task ended");
    assert_eq!((stats.sse_open, stats.ws_open), (0, 0));
    assert_eq!(
        ws.close_code().await,
        Some(1001),
        "WebSocket close: going away"
    );
    while sse.next().await.is_some() {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_close_is_answered_and_counted() {
    let bare = start_bare(|_| {}).await;
    let mut ws = WsClient::open(bare.addr, "").await;
    ws.next_json().await.unwrap();
    ws.close().await;
    let s = support::wait_stats(bare.addr, "the socket closed", |s| s["ws_open"] == 0).await;
    assert_eq!(s["client_closed"], 1, "{s}");
    assert_eq!(s["streams_total"], 1, "{s}");
    bare.shutdown().await.unwrap();
}
