//! The feed over every wire: consecutive, well-formed events, one feed.

mod support;

use rstest::rstest;
use support::{start, Feed, Msg, Wire};

#[rstest]
#[case::sse_h1(Wire::SseH1)]
#[case::sse_h2c(Wire::SseH2c)]
#[case::sse_h2(Wire::SseH2)]
#[case::ws_h1(Wire::WsH1)]
#[tokio::test]
async fn every_wire_gets_consecutive_ids_and_names_its_protocol(#[case] wire: Wire) {
    let server = start(|_| {});
    let mut feed = Feed::open(&server, wire, None).await;
    let hello = feed.hello().await;
    assert_eq!(hello["protocol"], wire.protocol(), "{hello}");
    assert_eq!(
        hello["transport"],
        if wire == Wire::WsH1 { "ws" } else { "sse" }
    );
    assert_eq!(hello["resume"], "none");
    let mut prev: Option<u64> = None;
    for _ in 0..5 {
        match feed.next_data().await.unwrap() {
            Msg::Tick {
                id,
                sent_unix_ns,
                json,
            } => {
                if let Some(p) = prev {
                    assert_eq!(id, p + 1, "consecutive ids");
                }
                prev = Some(id);
                assert!(sent_unix_ns > 1_600_000_000_000_000_000);
                let t = json["server_time"].as_str().unwrap();
                assert!(t.ends_with('Z') && t.contains('T'), "RFC 3339: {t}");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    server.shutdown().await.unwrap();
}

/// Over every SSE wire: the headers are made once per server and cloned
/// per stream (a compact map that HTTP/2 keeps for the stream's life), so
/// each protocol must still see all of them.
#[rstest]
#[case::sse_h1(Wire::SseH1)]
#[case::sse_h2c(Wire::SseH2c)]
#[case::sse_h2(Wire::SseH2)]
#[tokio::test]
async fn sse_starts_with_retry_and_uses_the_right_headers(#[case] wire: Wire) {
    let server = start(|c| {
        c.retry_ms = 2500;
        c.cors_origin = "https://page.example".into();
    });
    let mut res = support::get(&server, wire, "/sse", &[]).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.headers["content-type"], "text/event-stream");
    assert_eq!(res.headers["cache-control"], "no-cache");
    assert_eq!(res.headers["x-accel-buffering"], "no");
    assert_eq!(
        res.headers["access-control-allow-origin"],
        "https://page.example"
    );
    assert_eq!(res.headers["timing-allow-origin"], "https://page.example");
    // Never compressed, and no `Content-Encoding` at all (not even `identity`).
    assert!(res.headers.get("content-encoding").is_none());
    let first = res.chunk().await.unwrap();
    assert!(
        first.starts_with(b"retry: 2500\nevent: hello\n"),
        "{first:?}"
    );
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_same_id_carries_the_same_time_on_sse_and_ws() {
    let server = start(|_| {});
    let mut sse = Feed::open(&server, Wire::SseH1, None).await;
    let mut ws = Feed::open(&server, Wire::WsH1, None).await;
    let mut seen = std::collections::HashMap::new();
    for _ in 0..6 {
        for feed in [&mut sse, &mut ws] {
            if let Some(Msg::Tick {
                id, sent_unix_ns, ..
            }) = feed.next_data().await
            {
                if let Some(other) = seen.insert(id, sent_unix_ns) {
                    assert_eq!(other, sent_unix_ns, "id {id} differs between wires");
                }
            }
        }
    }
    assert!(seen.len() < 12, "the two wires shared some ids");
    server.shutdown().await.unwrap();
}

/// The keep-alive comes from one clock for the whole server: an idle feed
/// still sends it on every stream, over every SSE wire.
#[rstest]
#[case::sse_h1(Wire::SseH1)]
#[case::sse_h2c(Wire::SseH2c)]
#[case::sse_h2(Wire::SseH2)]
#[tokio::test]
async fn keepalive_comments_on_every_idle_stream(#[case] wire: Wire) {
    let server = start(|c| {
        c.rate = 0.2;
        c.keepalive = std::time::Duration::from_millis(300);
    });
    let mut feeds = [
        Feed::open(&server, wire, None).await,
        Feed::open(&server, wire, None).await,
    ];
    for feed in &mut feeds {
        feed.hello().await;
    }
    for feed in &mut feeds {
        let mut keepalives = 0;
        while keepalives < 2 {
            if feed.next().await.unwrap() == Msg::KeepAlive {
                keepalives += 1;
            }
        }
    }
    server.shutdown().await.unwrap();
}

/// A busy feed is its own sign of life: no keep-alive between events.
#[tokio::test]
async fn no_keepalive_on_a_busy_feed() {
    let server = start(|c| {
        c.rate = 50.0;
        c.keepalive = std::time::Duration::from_secs(1);
    });
    let mut feed = Feed::open(&server, Wire::SseH1, None).await;
    feed.hello().await;
    // Three keep-alive periods of events.
    for _ in 0..150 {
        let msg = feed.next().await.unwrap();
        assert_ne!(msg, Msg::KeepAlive, "a keep-alive on a busy feed");
    }
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn stats_and_metrics_count_streams_by_wire() {
    let server = start(|_| {});
    let mut h1 = Feed::open(&server, Wire::SseH1, None).await;
    let mut h2 = Feed::open(&server, Wire::SseH2, None).await;
    let mut h2c = Feed::open(&server, Wire::SseH2c, None).await;
    let mut ws = Feed::open(&server, Wire::WsH1, None).await;
    for f in [&mut h1, &mut h2, &mut h2c, &mut ws] {
        f.hello().await;
    }
    let s = support::wait_stats(&server, "4 open streams", |s| {
        s["connections_open_total"] == 4
    })
    .await;
    for key in ["sse_h1", "sse_h2", "sse_h2c", "ws_h1"] {
        assert_eq!(s["connections_open"][key], 1, "{key}: {s}");
    }
    assert!(s["process"]["rss_bytes"].as_u64().unwrap() > 0);
    assert!(s["feed"]["last_id"].as_u64().unwrap() > 0);
    assert!(s["h2_max_concurrent_streams"].is_null());
    let metrics = support::get(&server, Wire::SseH1, "/metrics", &[])
        .await
        .text()
        .await;
    assert!(
        metrics.contains("workbench_connections_open{transport=\"sse\",protocol=\"h2\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("workbench_process_resident_memory_bytes"));
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn the_page_and_info_are_served() {
    let server = start(|_| {});
    let page = support::get(&server, Wire::SseH1, "/", &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().await.contains("<html"));
    let missing = support::get(&server, Wire::SseH1, "/nope.txt", &[]).await;
    assert_eq!(missing.status, 404);
    let info: serde_json::Value = serde_json::from_str(
        &support::get(&server, Wire::SseH2, "/info", &[])
            .await
            .text()
            .await,
    )
    .unwrap();
    assert_eq!(info["http_url"], server.http_url());
    assert_eq!(info["spki_sha256"].as_str().unwrap().len(), 44);
    server.shutdown().await.unwrap();
}
