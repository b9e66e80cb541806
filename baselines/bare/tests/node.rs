//! The Node baseline (`baselines/node/server.js`, Express 5 + ws) in a
//! child process on port 0: SSE and WebSocket deliver consecutive ticks
//! stamped on the scheduled grid, resume works, it exits cleanly.
//!
//! Needs `node` and `npm ci --prefix baselines/node`; without them the
//! tests print SKIPPED and pass, unless WORKBENCH_REQUIRE_NODE=1.

mod support;

use server::feed::period_ns;
use support::{assert_on_grid, ChildServer, FeedClient, SseClient, Tick, Wire};
use tokio::process::Command;

const INSTALL: &str = "apt-get install -y nodejs npm && npm ci --prefix baselines/node";

/// `node server.js --port 0 --rate <rate>`, or `None` (after a loud
/// SKIPPED) when Node or the baseline's packages are missing.
fn node_command(test: &str, rate: &str) -> Option<Command> {
    let dir = support::node_dir();
    let missing = match std::process::Command::new("node").arg("--version").output() {
        Err(e) => Some(format!("`node` cannot run ({e})")),
        Ok(out) if !out.status.success() => Some("`node --version` failed".to_string()),
        Ok(_)
            if !dir.join("node_modules/express").is_dir()
                || !dir.join("node_modules/ws").is_dir() =>
        {
            Some(format!(
                "{} has no node_modules (express, ws)",
                dir.display()
            ))
        }
        Ok(_) => None,
    };
    if !support::available_or_skip(test, missing, "WORKBENCH_REQUIRE_NODE", INSTALL) {
        return None;
    }
    let mut command = Command::new("node");
    command
        .current_dir(dir)
        .args(["server.js", "--port", "0", "--rate", rate]);
    Some(command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_delivers_consecutive_stamped_ticks_over_sse_and_ws() {
    let Some(command) = node_command(
        "node_delivers_consecutive_stamped_ticks_over_sse_and_ws",
        "50",
    ) else {
        return;
    };
    let node = ChildServer::spawn(command).await;
    let mut sse = SseClient::open(node.addr(), "/sse", &[]).await;
    assert_eq!(sse.status, 200);
    let content_type = sse.headers["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("text/event-stream"),
        "{content_type}"
    );
    let mut ticks = Vec::new();
    while ticks.len() < 20 {
        let event = sse.next().await.expect("the stream stays open");
        // The seed's design: `id` and `data`, no event name.
        assert_eq!(event.event, "message");
        let json = serde_json::from_str(&event.data).expect("JSON data");
        let tick = Tick::from_json(&json).expect("only ticks");
        assert_eq!(event.id, Some(tick.id.to_string()));
        ticks.push(tick);
    }
    assert_eq!(sse.retry_ms, Some(1000));
    assert_on_grid(&ticks, period_ns(50.0));

    let mut ws = FeedClient::open(Wire::Ws, node.addr(), None).await;
    let ticks = ws.ticks(20).await;
    assert_on_grid(&ticks, period_ns(50.0));
    let status = node.close_stdin_and_wait().await;
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_resumes_from_the_last_event_id() {
    let Some(command) = node_command("node_resumes_from_the_last_event_id", "100") else {
        return;
    };
    let node = ChildServer::spawn(command).await;
    for wire in [Wire::Sse, Wire::Ws] {
        let mut client = FeedClient::open(wire, node.addr(), None).await;
        let last = client.ticks(5).await.last().unwrap().id;
        drop(client);
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        let mut client = FeedClient::open(wire, node.addr(), Some(last)).await;
        let ticks = client.ticks(30).await;
        assert_eq!(
            ticks[0].id,
            last + 1,
            "{wire:?}: resumes right after {last}"
        );
        assert_on_grid(&ticks, period_ns(100.0));
    }
    let status = node.terminate_and_wait().await;
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_survives_a_garbage_frame_and_a_bad_resume_id() {
    let Some(command) = node_command("node_survives_a_garbage_frame_and_a_bad_resume_id", "50")
    else {
        return;
    };
    let node = ChildServer::spawn(command).await;
    let mut ws = support::WsClient::open(node.addr(), "?lastEventId=abc").await;
    ws.next_json()
        .await
        .expect("a tick: a malformed id starts live");
    // An unmasked client frame: a protocol error, not a crash.
    tokio::io::AsyncWriteExt::write_all(ws.ws.get_mut(), b"\x81\x02hi")
        .await
        .unwrap();
    assert_eq!(ws.close_code().await, Some(1002));
    let mut client = FeedClient::open(Wire::Sse, node.addr(), Some(u64::MAX)).await;
    let ticks = client.ticks(5).await;
    assert_on_grid(&ticks, period_ns(50.0));
    let status = node.close_stdin_and_wait().await;
    assert!(status.success(), "{status}");
}
