//! The Node baseline (`node baselines/node/server.js`) as a child process,
//! or a loud SKIPPED when Node or its packages are missing (a failure when
//! `WORKBENCH_REQUIRE_NODE=1`).

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use loadgen::run::stacks::{node_baseline, BaselineReady};
use tokio::io::{AsyncBufReadExt, BufReader};

pub struct NodeServer {
    pub port: u16,
    pub pid: u32,
    child: tokio::process::Child,
}

/// Whether the Node baseline can run; prints SKIPPED (or panics when
/// required) when not.
pub fn available(test: &str) -> bool {
    match node_baseline() {
        Ok(_) => true,
        Err(why) => {
            if std::env::var("WORKBENCH_REQUIRE_NODE").is_ok_and(|v| v == "1") {
                panic!("{test}: WORKBENCH_REQUIRE_NODE=1 but {why}");
            }
            // Straight to stderr: the harness captures `eprintln!` of passing tests.
            let _ = writeln!(std::io::stderr(), "SKIPPED: {test}: {why}");
            false
        }
    }
}

/// Starts the Node baseline at `rate` on a free port, or `None` after a SKIPPED.
pub async fn start(test: &str, rate: f64) -> Option<NodeServer> {
    if !available(test) {
        return None;
    }
    let dir = node_baseline().ok()?;
    let mut child = tokio::process::Command::new("node")
        .current_dir(dir)
        .args(["server.js", "--port", "0", "--rate", &rate.to_string()])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(Duration::from_secs(20), lines.next_line())
        .await
        .expect("node says it listens")
        .unwrap()
        .expect("a ready line");
    let ready: BaselineReady = serde_json::from_str(&line).expect("the ready line parses");
    Some(NodeServer {
        port: ready.port,
        pid: ready.pid,
        child,
    })
}

impl NodeServer {
    pub async fn stop(mut self) {
        drop(self.child.stdin.take());
        if tokio::time::timeout(Duration::from_secs(5), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
