//! The shared feed (`--feed-redis`): several real server processes on one
//! real `redis-server` (a child process each test starts on a free port,
//! nothing on disk), talked to over real sockets.
//!
//! Without `redis-server` these tests print `SKIPPED: …` and pass, unless
//! `WORKBENCH_REQUIRE_REDIS=1` (CI).

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use support::{redis_or_skip, ChildServer, Feed, Msg, Wire};

/// Every instance's flags for one feed on `redis` (20 events/s unless
/// `extra` says otherwise).
fn feed_args<'a>(url: &'a str, key: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut a = vec!["--feed-redis", url, "--feed-key", key];
    if !extra.contains(&"--rate") {
        a.extend(["--rate", "20"]);
    }
    a.extend_from_slice(extra);
    a
}

/// Reads for `how_long` while the feed is down: the stream stays open and
/// brings nothing new beyond a tick or two already in flight.
async fn stays_open_and_quiet(feed: &mut Feed, last: u64, how_long: Duration) -> Vec<(u64, u64)> {
    let until = Instant::now() + how_long;
    let mut in_flight = Vec::new();
    while Instant::now() < until {
        match tokio::time::timeout(until - Instant::now(), feed.next()).await {
            Ok(Some(Msg::KeepAlive)) | Err(_) => {}
            Ok(Some(Msg::Tick {
                id, sent_unix_ns, ..
            })) if id <= last + 2 => in_flight.push((id, sent_unix_ns)),
            other => panic!("the stream must stay open and quiet, got {other:?}"),
        }
    }
    in_flight
}

/// `/stats` `broker` of a child server.
async fn broker(s: &ChildServer) -> serde_json::Value {
    s.stats().await["broker"].clone()
}

/// Waits until `check` holds for the instance's broker figures.
async fn wait_broker(s: &ChildServer, what: &str, check: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let b = broker(s).await;
        if check(&b) {
            return;
        }
        assert!(Instant::now() < deadline, "waiting for {what}: {b}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The next `n` ticks as (id, sent_unix_ns); a gap fails the test.
async fn ticks(feed: &mut Feed, n: usize) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    while out.len() < n {
        match tokio::time::timeout(Duration::from_secs(10), feed.next_data()).await {
            Ok(Some(Msg::Tick {
                id, sent_unix_ns, ..
            })) => out.push((id, sent_unix_ns)),
            other => panic!("expected a tick, got {other:?} after {out:?}"),
        }
    }
    out
}

/// Ids must follow each other: no hole, no duplicate.
fn assert_consecutive(ids: &[(u64, u64)], what: &str) {
    for w in ids.windows(2) {
        assert_eq!(w[1].0, w[0].0 + 1, "{what}: a hole or a duplicate: {ids:?}");
    }
}

fn unique_key(test: &str) -> String {
    format!("test:{test}:{}", std::process::id())
}

#[tokio::test]
async fn two_instances_started_apart_serve_the_same_ids_and_stamps() {
    let Some(redis) = redis_or_skip("two_instances_started_apart_serve_the_same_ids_and_stamps")
    else {
        return;
    };
    let url = redis.url();
    let key = unique_key("same");
    let a = ChildServer::spawn(&feed_args(&url, &key, &[]), None);
    wait_broker(&a, "a leader", |b| b["role"] == "leader").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b = ChildServer::spawn(&feed_args(&url, &key, &[]), None);
    wait_broker(&b, "b reading", |b| b["last_id_read"].as_u64() > Some(0)).await;
    assert_eq!(broker(&b).await["role"], "follower");

    let mut on_a = Feed::open_at(a.http_addr, Wire::SseH1, None).await;
    let mut on_b = Feed::open_at(b.http_addr, Wire::SseH1, None).await;
    let mut ws_b = Feed::open_at(b.http_addr, Wire::WsH1, None).await;
    let (from_a, from_b, ws_from_b) = tokio::join!(
        ticks(&mut on_a, 20),
        ticks(&mut on_b, 20),
        ticks(&mut ws_b, 20)
    );
    for (what, got) in [("a", &from_a), ("b", &from_b), ("b ws", &ws_from_b)] {
        assert_consecutive(got, what);
    }
    let stamps: BTreeMap<u64, u64> = from_a.iter().copied().collect();
    let mut shared = 0;
    for (id, sent) in from_b.iter().chain(&ws_from_b) {
        if let Some(a_sent) = stamps.get(id) {
            assert_eq!(a_sent, sent, "id {id} carries another sent_unix_ns on b");
            shared += 1;
        }
    }
    assert!(
        shared >= 30,
        "the instances served too few common ids: {shared}"
    );
    // The stamps are the grid's: one period apart, whoever serves them.
    for w in from_b.windows(2) {
        assert_eq!(w[1].1 - w[0].1, 50_000_000);
    }
}

#[tokio::test]
async fn a_client_resumes_on_another_instance_from_its_ring_or_the_stream() {
    let Some(redis) =
        redis_or_skip("a_client_resumes_on_another_instance_from_its_ring_or_the_stream")
    else {
        return;
    };
    let url = redis.url();
    let key = unique_key("resume");
    let a = ChildServer::spawn(&feed_args(&url, &key, &[]), None);
    // b keeps 8 events: an older resume there comes from the stream.
    let b = ChildServer::spawn(&feed_args(&url, &key, &["--replay", "8"]), None);
    wait_broker(&b, "b reading", |b| b["last_id_read"].as_u64() > Some(0)).await;

    for wire in [Wire::SseH1, Wire::WsH1] {
        // From b's ring: the client drops a and comes straight back on b.
        let mut on_a = Feed::open_at(a.http_addr, wire, None).await;
        let seen = ticks(&mut on_a, 5).await;
        drop(on_a);
        let last = seen.last().unwrap().0;
        let mut on_b = Feed::open_at(b.http_addr, wire, Some(&last.to_string())).await;
        let hello = on_b.hello().await;
        assert_eq!(hello["resume"], "replay", "{wire:?}: {hello}");
        let after = ticks(&mut on_b, 10).await;
        assert_eq!(after[0].0, last + 1, "{wire:?}: resumed at {after:?}");
        assert_consecutive(&after, "resumed on b");

        // From the stream: gone for longer than b's ring spans.
        let mut on_a = Feed::open_at(a.http_addr, wire, None).await;
        let last = ticks(&mut on_a, 1).await[0].0;
        drop(on_a);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut on_b = Feed::open_at(b.http_addr, wire, Some(&last.to_string())).await;
        let hello = on_b.hello().await;
        assert_eq!(hello["resume"], "archive", "{wire:?}: {hello}");
        let after = ticks(&mut on_b, 40).await;
        assert_eq!(after[0].0, last + 1, "{wire:?}: resumed at {after:?}");
        assert_consecutive(&after, "resumed on b from the stream");
    }
    let figures = broker(&b).await;
    assert!(figures["archive_events"].as_u64() >= Some(40), "{figures}");
    assert_eq!(figures["archive_failures"], 0);
}

#[tokio::test]
async fn what_the_stream_no_longer_holds_is_an_exact_gap() {
    let Some(redis) = redis_or_skip("what_the_stream_no_longer_holds_is_an_exact_gap") else {
        return;
    };
    let url = redis.url();
    let key = unique_key("trimmed");
    // 100 events a second, a stream of at least 16 and a ring of 8.
    let extra = ["--rate", "100", "--feed-stream-max", "16", "--replay", "8"];
    let a = ChildServer::spawn(&feed_args(&url, &key, &extra), None);
    wait_broker(&a, "ids past 300", |b| {
        b["last_id_read"].as_u64() > Some(300)
    })
    .await;
    let mut feed = Feed::open_at(a.http_addr, Wire::SseH1, Some("2")).await;
    assert_eq!(feed.hello().await["resume"], "archive");
    let (from, to) = match tokio::time::timeout(Duration::from_secs(10), feed.next_data()).await {
        Ok(Some(Msg::Gap { from, to })) => (from, to),
        other => panic!("expected a gap first, got {other:?}"),
    };
    assert_eq!(from, 3);
    assert!(to > 100, "MAXLEN ~ 16 trims: {to}");
    let after = ticks(&mut feed, 30).await;
    assert_eq!(after[0].0, to + 1, "the gap ends where the events begin");
    assert_consecutive(&after, "after the gap");
}

#[tokio::test]
async fn a_killed_producer_is_replaced_within_about_a_second_with_no_hole() {
    let Some(redis) =
        redis_or_skip("a_killed_producer_is_replaced_within_about_a_second_with_no_hole")
    else {
        return;
    };
    let url = redis.url();
    let key = unique_key("failover");
    let mut a = ChildServer::spawn(&feed_args(&url, &key, &[]), None);
    wait_broker(&a, "a leader", |b| b["role"] == "leader").await;
    let b = ChildServer::spawn(&feed_args(&url, &key, &[]), None);
    let c = ChildServer::spawn(&feed_args(&url, &key, &[]), None);
    wait_broker(&c, "c reading", |b| b["last_id_read"].as_u64() > Some(0)).await;
    let mut on_b = Feed::open_at(b.http_addr, Wire::SseH1, None).await;
    let mut on_c = Feed::open_at(c.http_addr, Wire::WsH1, None).await;
    let (before_b, before_c) = tokio::join!(ticks(&mut on_b, 5), ticks(&mut on_c, 5));

    a.kill();
    let killed = Instant::now();
    let leader = loop {
        let (rb, rc) = tokio::join!(broker(&b), broker(&c));
        if rb["role"] == "leader" {
            break &b;
        }
        if rc["role"] == "leader" {
            break &c;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "nobody took over: {rb} {rc}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let took = killed.elapsed();
    // The lease (1 s) lapses, then the next attempt (every 250 ms) takes it.
    assert!(
        took < Duration::from_millis(1800),
        "took over after {took:?}"
    );

    let (after_b, after_c) = tokio::join!(ticks(&mut on_b, 60), ticks(&mut on_c, 60));
    for (what, before, after) in [("b", before_b, after_b), ("c", before_c, after_c)] {
        let all: Vec<(u64, u64)> = before.into_iter().chain(after).collect();
        assert_consecutive(&all, what);
        for w in all.windows(2) {
            assert_eq!(
                w[1].1 - w[0].1,
                50_000_000,
                "{what}: the grid holds across the failover"
            );
        }
    }
    let figures = broker(leader).await;
    assert!(
        figures["published_late"].as_u64() >= Some(1),
        "the ticks due while nobody led go out late: {figures}"
    );
    assert_eq!(figures["duplicate_ids_refused"], 0, "{figures}");
}

#[tokio::test]
async fn clients_stay_connected_while_redis_restarts_and_the_feed_resumes() {
    let Some(mut redis) =
        redis_or_skip("clients_stay_connected_while_redis_restarts_and_the_feed_resumes")
    else {
        return;
    };
    let url = redis.url();
    let key = unique_key("outage");
    let extra = ["--keepalive", "300ms"];
    let a = ChildServer::spawn(&feed_args(&url, &key, &extra), None);
    let b = ChildServer::spawn(&feed_args(&url, &key, &extra), None);
    wait_broker(&b, "b reading", |b| b["last_id_read"].as_u64() > Some(0)).await;
    let mut on_a = Feed::open_at(a.http_addr, Wire::SseH1, None).await;
    let mut on_b = Feed::open_at(b.http_addr, Wire::WsH1, None).await;
    let (before_a, before_b) = tokio::join!(ticks(&mut on_a, 5), ticks(&mut on_b, 5));

    redis.kill();
    wait_broker(&a, "a disconnected", |b| b["connected"] == false).await;
    wait_broker(&b, "b disconnected", |b| b["connected"] == false).await;
    // Down for a while: the streams stay open (SSE keep-alives arrive,
    // WebSocket pings are answered while the client reads).
    let (last_a, last_b) = (before_a.last().unwrap().0, before_b.last().unwrap().0);
    // Ticks already on their way when redis went down still arrive; they
    // belong to the sequence checked below.
    let (in_flight_a, in_flight_b) = tokio::join!(
        stays_open_and_quiet(&mut on_a, last_a, Duration::from_secs(2)),
        stays_open_and_quiet(&mut on_b, last_b, Duration::from_secs(2))
    );
    assert_eq!(a.stats().await["connections_open_total"], 1);
    assert_eq!(b.stats().await["connections_open_total"], 1);

    redis.restart().expect("redis starts again");
    let (after_a, after_b) = tokio::join!(ticks(&mut on_a, 40), ticks(&mut on_b, 40));
    for (what, before, in_flight, after) in [
        ("a", before_a, in_flight_a, after_a),
        ("b", before_b, in_flight_b, after_b),
    ] {
        let all: Vec<(u64, u64)> = before.into_iter().chain(in_flight).chain(after).collect();
        assert_consecutive(&all, what);
    }
    for s in [&a, &b] {
        let f = broker(s).await;
        assert_eq!(f["connected"], true, "{f}");
        assert!(f["connects"].as_u64() >= Some(2), "{f}");
    }
}

#[tokio::test]
async fn reuse_port_spreads_connections_over_processes_on_one_port() {
    let Some(redis) = redis_or_skip("reuse_port_spreads_connections_over_processes_on_one_port")
    else {
        return;
    };
    let url = redis.url();
    let key = unique_key("reuse");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let tls_port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let http = format!("127.0.0.1:{port}");
    let https = format!("127.0.0.1:{tls_port}");
    // Both listeners shared, the TLS one too (each process generates its
    // own certificate).
    let mut args = vec![
        "--http",
        &http,
        "--https",
        &https,
        "--workers",
        "1",
        "--reuse-port",
    ];
    args.extend(feed_args(&url, &key, &[]));
    let one = ChildServer::spawn_exactly(&args, None);
    let two = ChildServer::spawn_exactly(&args, None);
    assert_eq!(one.http_addr, two.http_addr);
    wait_broker(&two, "two reading", |b| {
        b["last_id_read"].as_u64() > Some(0)
    })
    .await;
    let addr: SocketAddr = http.parse().unwrap();
    let mut feeds = Vec::new();
    for _ in 0..40 {
        let mut f = Feed::open_at(addr, Wire::SseH1, None).await;
        f.hello().await;
        feeds.push(f);
    }
    // Either process may answer a /stats on the shared port: ask until
    // both have, telling them apart by their instance name.
    let mut open_by_instance = BTreeMap::new();
    for _ in 0..200 {
        let s = one.stats().await;
        let instance = s["broker"]["instance"].as_str().unwrap().to_string();
        open_by_instance.insert(instance, s["connections_open_total"].as_i64().unwrap());
        if open_by_instance.len() == 2 {
            break;
        }
    }
    let open: Vec<i64> = open_by_instance.values().copied().collect();
    assert_eq!(
        open.len(),
        2,
        "only one process ever answered: {open_by_instance:?}"
    );
    assert_eq!(open.iter().sum::<i64>(), 40);
    assert!(
        open.iter().all(|&n| n > 0),
        "the kernel gave every connection to one process: {open:?}"
    );
    // Without --reuse-port a second server on the port is refused.
    let taken = std::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .args(["--http", &http, "--no-tls"])
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert!(!taken.status.success());
    assert!(
        String::from_utf8_lossy(&taken.stderr).contains("binding the plain listener"),
        "{}",
        String::from_utf8_lossy(&taken.stderr)
    );
}
