//! Logs go to stderr, in plain text when stderr is not a terminal (a file,
//! a pipe): no colour escape codes in a log file. The `serve` subcommand's
//! ready line stays alone on stdout, where the parent process reads it.

use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};

#[tokio::test]
async fn logs_on_a_pipe_carry_no_colour_codes() {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(["serve", "--http", "127.0.0.1:0", "--https", "127.0.0.1:0"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("loadgen serve starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = tokio::time::timeout(Duration::from_secs(20), stdout.next_line())
        .await
        .expect("a ready line within 20 s")
        .unwrap()
        .expect("a ready line");
    let ready: serde_json::Value = serde_json::from_str(&ready).expect("the ready line is JSON");
    assert!(ready["http_addr"].is_string(), "{ready}");
    // Closing stdin asks it to stop.
    drop(child.stdin.take());
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(20), child.wait())
        .await
        .expect("it stops")
        .unwrap();
    assert!(status.success(), "{stderr}");
    assert!(stderr.contains("INFO"), "info logs on stderr: {stderr}");
    assert!(!stderr.contains('\u{1b}'), "no escape codes: {stderr:?}");
    assert_eq!(
        stdout.next_line().await.unwrap(),
        None,
        "nothing but the ready line on stdout"
    );
}
