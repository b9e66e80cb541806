//! The real binary end to end: the embedded server in a child process, the
//! connections spread over worker processes, one merged result.

use std::time::Duration;

#[tokio::test]
async fn connections_spread_over_worker_processes_merge_into_one_result() {
    let dir = tempfile::tempdir().unwrap();
    let run = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args([
            "run",
            "--wire",
            "sse-h1,ws-h1",
            "--connections",
            "41",
            "--processes",
            "2",
            "--rate",
            "20",
            "--duration",
            "1s",
            "--quiet",
            "--out",
        ])
        .arg(dir.path())
        .output();
    let out = tokio::time::timeout(Duration::from_secs(120), run)
        .await
        .expect("finishes")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let text = std::fs::read_to_string(dir.path().join("result.json")).unwrap();
    let r: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(r["complete"], true, "{}", r["problems"]);
    assert_eq!(r["scenarios"][0]["server"]["mode"], "child-process");
    for w in r["scenarios"][0]["wires"].as_array().unwrap() {
        assert_eq!(w["processes"], 2);
        assert_eq!(w["opened"], 41, "both shares opened: {}", w["wire"]);
        assert_eq!(w["lost"], 0);
        assert_eq!(w["duplicates"], 0);
        // The merged histogram holds every event both processes counted.
        assert_eq!(
            w["latency_us"]["count"],
            w["recorder"]["counters"]["events"]
        );
        assert!(w["events_in_hold"].as_u64().unwrap() > 41 * 10);
        assert!(w["server"]["rss_per_connection"].as_f64().unwrap() > 0.0);
    }
}
