//! Helpers of the load generator's integration tests that start other
//! servers: a tiny server with its own field names, and the Node baseline.
#![allow(dead_code)]

pub mod fields_server;
pub mod node;

use std::path::Path;
use std::process::Output;
use std::time::Duration;

/// `loadgen run <common> --quiet --out <out> <args>` through the built
/// binary, with `env` set, bounded in time.
pub async fn run_binary(
    common: &[&str],
    args: &[&str],
    out: &Path,
    env: &[(&str, &Path)],
) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"));
    cmd.arg("run")
        .args(common)
        .args(["--quiet", "--out"])
        .arg(out)
        .args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .expect("loadgen finishes")
        .unwrap()
}
