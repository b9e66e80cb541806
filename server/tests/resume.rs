//! Resume with Last-Event-ID / lastEventId: exactly the missed events, then
//! live ones; gaps named; malformed and future ids documented.

mod support;

use rstest::rstest;
use support::{start, Feed, Msg, Wire};

/// Reads ticks until `n` arrive, returning their ids (gaps as negatives is
/// not needed: a gap here is a failure).
async fn ticks(feed: &mut Feed, n: usize) -> Vec<u64> {
    let mut ids = Vec::new();
    while ids.len() < n {
        match feed.next_data().await.unwrap() {
            Msg::Tick { id, .. } => ids.push(id),
            other => panic!("unexpected {other:?}"),
        }
    }
    ids
}

#[rstest]
#[case::sse_h1(Wire::SseH1)]
#[case::sse_h2(Wire::SseH2)]
#[case::sse_h2c(Wire::SseH2c)]
#[case::ws_h1(Wire::WsH1)]
#[tokio::test]
async fn reconnect_gets_exactly_the_missed_events_then_live(#[case] wire: Wire) {
    let server = start(|_| {});
    let mut feed = Feed::open(&server, wire, None).await;
    feed.hello().await;
    let first = ticks(&mut feed, 3).await;
    let last = *first.last().unwrap();
    feed.abort();
    // Miss some events.
    while server.hub().latest_id() < last + 5 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut again = Feed::open(&server, wire, Some(&last.to_string())).await;
    let hello = again.hello().await;
    assert_eq!(hello["resume"], "replay");
    let ids = ticks(&mut again, 10).await;
    let want: Vec<u64> = (last + 1..=last + 10).collect();
    assert_eq!(ids, want, "no hole and no duplicate across the seam");
    server.shutdown().await.unwrap();
}

#[rstest]
#[case::sse(Wire::SseH1)]
#[case::ws(Wire::WsH1)]
#[tokio::test]
async fn too_old_an_id_gets_a_gap_then_the_ring(#[case] wire: Wire) {
    let server = start(|c| {
        c.replay = 4;
        c.rate = 50.0;
    });
    while server.hub().latest_id() < 20 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut feed = Feed::open(&server, wire, Some("2")).await;
    let hello = feed.hello().await;
    assert_eq!(hello["resume"], "gap");
    let Msg::Gap { from, to } = feed.next_data().await.unwrap() else {
        panic!("a gap first");
    };
    assert_eq!(from, 3);
    let mut expect = to + 1;
    for _ in 0..6 {
        match feed.next_data().await.unwrap() {
            Msg::Tick { id, .. } => {
                assert_eq!(id, expect);
                expect += 1;
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let s = support::stats(&server).await;
    assert_eq!(s["gaps"], 1);
    assert_eq!(s["gap_ids"].as_u64().unwrap(), to - from + 1);
    server.shutdown().await.unwrap();
}

#[rstest]
#[case::sse_not_a_number(Wire::SseH1, "abc", "malformed")]
#[case::sse_negative(Wire::SseH2c, "-5", "malformed")]
#[case::sse_overflow(Wire::SseH1, "123456789012345678901234567890", "malformed")]
#[case::ws_not_a_number(Wire::WsH1, "x1", "malformed")]
#[case::sse_future(Wire::SseH1, "99999999", "future")]
#[case::ws_future(Wire::WsH1, "99999999", "future")]
#[tokio::test]
async fn malformed_and_future_ids_start_live(
    #[case] wire: Wire,
    #[case] id: &str,
    #[case] resume: &str,
) {
    let server = start(|_| {});
    let mut feed = Feed::open(&server, wire, Some(id)).await;
    let hello = feed.hello().await;
    assert_eq!(hello["resume"], resume, "{hello}");
    let newest = hello["last_id"].as_u64().unwrap();
    let ids = ticks(&mut feed, 3).await;
    assert!(ids[0] > newest, "live events only: {ids:?} after {newest}");
    assert_eq!(ids[2], ids[0] + 2);
    server.shutdown().await.unwrap();
}

#[tokio::test]
async fn query_resume_works_for_sse_and_the_header_wins() {
    let server = start(|_| {});
    while server.hub().latest_id() < 10 {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let mut res = support::get(&server, Wire::SseH1, "/sse?lastEventId=3", &[]).await;
    let mut body = String::new();
    while !body.contains("id: 4\n") {
        body.push_str(std::str::from_utf8(&res.chunk().await.unwrap()).unwrap());
    }
    assert!(body.contains("\"resume\":\"replay\""));
    assert!(!body.contains("id: 3\n"));
    let mut res = support::get(
        &server,
        Wire::SseH1,
        "/sse?lastEventId=3",
        &[("Last-Event-ID", "7")],
    )
    .await;
    let mut body = String::new();
    while !body.contains("id: 8\n") {
        body.push_str(std::str::from_utf8(&res.chunk().await.unwrap()).unwrap());
    }
    assert!(
        !body.contains("id: 4\n"),
        "the header's id wins over the query"
    );
    server.shutdown().await.unwrap();
}
