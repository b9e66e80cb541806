//! The `bare` binary as a parent starts it: a ready line on stdout, the
//! feed on the port it names, and a clean exit when stdin closes or on
//! SIGTERM.

mod support;

use server::feed::period_ns;
use support::{assert_on_grid, ChildServer, FeedClient, Wire, WsClient};
use tokio::process::Command;

fn bare_command() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bare"));
    command.args(["--port", "0", "--rate", "50"]);
    command
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serves_the_port_it_announces_and_exits_when_stdin_closes() {
    let child = ChildServer::spawn(bare_command()).await;
    for wire in [Wire::Sse, Wire::Ws] {
        let mut client = FeedClient::open(wire, child.addr(), None).await;
        let ticks = client.ticks(10).await;
        assert_on_grid(&ticks, period_ns(50.0));
    }
    let status = child.close_stdin_and_wait().await;
    assert!(status.success(), "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_closes_websockets_as_going_away_and_exits_cleanly() {
    let child = ChildServer::spawn(bare_command()).await;
    let mut ws = WsClient::open(child.addr(), "").await;
    ws.next_json().await.expect("a hello");
    let status = child.terminate_and_wait().await;
    assert!(status.success(), "{status}");
    assert_eq!(ws.close_code().await, Some(1001));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_taken_port_is_a_clear_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = Command::new(env!("CARGO_BIN_EXE_bare"))
        .args(["--port", &port, "--ignore-stdin"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("binding 127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(stderr.contains("--port 0"), "{stderr}");
    assert!(out.stdout.is_empty(), "no ready line on failure");
}
