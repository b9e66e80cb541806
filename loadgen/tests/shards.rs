//! `loadgen run --shard I/N --start-at T`: shards run their blocks of the
//! connections, hold over the same window, and `loadgen merge` adds them
//! up to exactly what one load generator holding every connection measures
//! over that window (all of them run at once against one real server).

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use serde_json::Value;

const CONNECTIONS: usize = 12;
const SHARDS: usize = 3;
/// Slow enough that the window's edges fall half a period (250 ms) from
/// any tick, far more than the processes' timing differs.
const RATE_HZ: f64 = 2.0;
const HOLD_S: u64 = 3;

async fn run(args: Vec<String>) -> Output {
    let cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output();
    tokio::time::timeout(Duration::from_secs(90), cmd)
        .await
        .expect("loadgen finishes")
        .expect("loadgen runs")
}

fn wire(dir: &Path) -> Value {
    let text = std::fs::read_to_string(dir.join("result.json")).expect("result.json written");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["complete"], true, "{}", v["problems"]);
    v["scenarios"][0]["wires"][0].clone()
}

#[tokio::test]
async fn merged_shards_equal_one_run_over_the_same_window() {
    let mut config = server::ServerConfig::ephemeral();
    config.rate = RATE_HZ;
    config.no_tls = true;
    let server = server::run(config).expect("server starts");
    // A tick's stamp, to put the window's edges between ticks.
    let period_ns = (1e9 / RATE_HZ) as u64;
    let sent = loop {
        if let Some(sent) = server.hub().ring_events().last().map(|e| e.sent_unix_ns) {
            break sent;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ready_by = server::event::unix_now_ns() + 6_000_000_000;
    let start_ns = sent + (ready_by - sent).div_ceil(period_ns) * period_ns + period_ns / 2;
    let start_at =
        humantime::format_rfc3339_nanos(std::time::UNIX_EPOCH + Duration::from_nanos(start_ns))
            .to_string();
    let dir = tempfile::tempdir().unwrap();
    let common = |out: &str| -> Vec<String> {
        [
            "run",
            "--target",
            &server.http_url(),
            "--wire",
            "sse-h1",
            "--connections",
            &CONNECTIONS.to_string(),
            "--rate",
            &RATE_HZ.to_string(),
            "--duration",
            &format!("{HOLD_S}s"),
            "--start-at",
            &start_at,
            "--quiet",
            "--out",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([dir.path().join(out).display().to_string()])
        .collect()
    };
    let mut runs = vec![run(common("whole"))];
    for i in 0..SHARDS {
        let mut args = common(&format!("shard{i}"));
        args.extend(["--shard".into(), format!("{i}/{SHARDS}")]);
        runs.push(run(args));
    }
    let outputs = futures_util::future::join_all(runs).await;
    for o in &outputs {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let mut merge: Vec<String> = vec!["merge".into()];
    merge.extend((0..SHARDS).map(|i| dir.path().join(format!("shard{i}")).display().to_string()));
    merge.extend([
        "--out".into(),
        dir.path().join("merged").display().to_string(),
    ]);
    let merged_run = run(merge).await;
    assert!(
        merged_run.status.success(),
        "{}",
        String::from_utf8_lossy(&merged_run.stderr)
    );

    let whole = wire(&dir.path().join("whole"));
    let merged = wire(&dir.path().join("merged"));
    let shares: Vec<u64> = (0..SHARDS)
        .map(|i| {
            wire(&dir.path().join(format!("shard{i}")))["connections"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(shares, [4, 4, 4]);
    let per_window = CONNECTIONS as u64 * HOLD_S * RATE_HZ as u64;
    for key in [
        "connections",
        "opened",
        "events_in_hold",
        "lost",
        "duplicates",
    ] {
        assert_eq!(
            merged[key], whole[key],
            "{key}: merged {merged} whole {whole}"
        );
    }
    assert_eq!(whole["events_in_hold"], per_window);
    assert_eq!(
        merged["latency_hold_us"]["count"],
        whole["latency_hold_us"]["count"]
    );
    assert_eq!(whole["lost"], 0);
    server.shutdown().await.unwrap();
}
