//! `--stacks` through the real binary: every stack in its own child
//! process on port 0, the same wires, connections and rate, one scenario
//! per stack in result.json, and the report's stacks section. Node runs
//! when it is installed (else a loud SKIPPED, a failure with
//! WORKBENCH_REQUIRE_NODE=1); a missing Node is named with how to install
//! it while the other stacks run.

mod support;

use std::path::Path;
use std::process::Output;

async fn loadgen(args: &[&str], out: &Path, node_dir: Option<&Path>) -> Output {
    let common = [
        "--wire",
        "sse-h1,ws-h1",
        "--connections",
        "10",
        "--rate",
        "20",
        "--ramp",
        "0",
        "--duration",
        "1s",
    ];
    let env: Vec<(&str, &Path)> = node_dir
        .map(|d| (loadgen::run::stacks::NODE_DIR_VAR, d))
        .into_iter()
        .collect();
    support::run_binary(&common, args, out, &env).await
}

fn result_of(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("result.json")).unwrap()).unwrap()
}

#[tokio::test]
async fn every_stack_runs_the_same_wires_in_its_own_process() {
    let with_node = support::node::available("every_stack_runs_the_same_wires_in_its_own_process");
    let stacks = if with_node {
        "actix,bare,node"
    } else {
        "actix,bare"
    };
    let dir = tempfile::tempdir().unwrap();
    let out = loadgen(&["--stacks", stacks], dir.path(), None).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let r = result_of(dir.path());
    assert_eq!(out.status.code(), Some(0), "{stderr}\n{}", r["problems"]);
    assert_eq!(r["complete"], true, "{}", r["problems"]);
    let scenarios = r["scenarios"].as_array().unwrap();
    let names: Vec<&str> = scenarios
        .iter()
        .map(|s| s["stack"].as_str().unwrap())
        .collect();
    assert_eq!(names, stacks.split(',').collect::<Vec<_>>());
    let mut pids = Vec::new();
    for s in scenarios {
        assert_eq!(s["server"]["mode"], "child-process");
        pids.push(s["server"]["http_url"].as_str().unwrap().to_string());
        let wires: Vec<&str> = s["wires"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["wire"].as_str().unwrap())
            .collect();
        assert_eq!(wires, ["sse-h1", "ws-h1"], "{}", s["stack"]);
        for w in s["wires"].as_array().unwrap() {
            let what = format!("{} {}", s["stack"], w["wire"]);
            assert_eq!(w["opened"], 10, "{what}");
            assert_eq!(w["lost"], 0, "{what}");
            assert_eq!(w["duplicates"], 0, "{what}");
            let eps = w["events_per_s"].as_f64().unwrap();
            assert!(
                (150.0..=250.0).contains(&eps),
                "{what}: {eps} events/s for 10 × 20"
            );
            assert!(
                w["server"]["rss_held"].as_u64().unwrap() > 0,
                "{what}: /proc read"
            );
            assert!(w["connected_in_s"].as_f64().is_some(), "{what}");
            assert_eq!(w["protocols_seen"]["http/1.1"], 10, "{what}");
        }
    }
    pids.dedup();
    assert_eq!(
        pids.len(),
        scenarios.len(),
        "each stack on its own port: {pids:?}"
    );
    let report = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    for needle in [
        "## Stacks side by side",
        "### sse-h1: stacks compared",
        "### ws-h1: stacks compared",
        "bare tokio: at most",
        "stacks-sse-h1-delivered.svg",
    ] {
        assert!(report.contains(needle), "report has {needle:?}");
    }
    assert!(dir.path().join("charts/stacks-ws-h1-p99.svg").is_file());
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    let body = html.trim_start_matches("<!DOCTYPE html>");
    let doc = roxmltree::Document::parse(body).expect("report.html is well-formed XML");
    let inline = doc
        .descendants()
        .filter(|n| {
            n.attribute("id")
                .is_some_and(|id| id.starts_with("chart-stacks-"))
        })
        .count();
    assert_eq!(inline, 8, "4 charts per wire, inline");
    // Compared with itself, each stack's scenario meets its own.
    let run = loadgen::result::RunResult::load(&dir.path().join("result.json")).unwrap();
    let c = loadgen::compare::compare(&run, &run, 0.1);
    assert!(c.passes(), "{:?}", c.notes);
    for stack in stacks.split(',') {
        assert!(
            c.deltas
                .iter()
                .any(|d| d.scenario.ends_with(&format!(" on {stack}")) && d.a == d.b),
            "{stack}: {:?}",
            c.deltas.iter().map(|d| &d.scenario).collect::<Vec<_>>()
        );
    }
}

#[tokio::test]
async fn without_node_the_rest_runs_and_the_install_is_named() {
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("server.js"), "// no packages beside it").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let out = loadgen(&["--stacks", "bare,node"], dir.path(), Some(empty.path())).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "asked for node, could not run it"
    );
    let r = result_of(dir.path());
    let problems = r["problems"].to_string();
    assert!(
        problems.contains("stack node skipped")
            && problems.contains("node_modules")
            && problems.contains("apt-get install -y nodejs npm && npm ci --prefix baselines/node"),
        "{problems}"
    );
    let scenarios = r["scenarios"].as_array().unwrap();
    assert_eq!(scenarios.len(), 1);
    assert_eq!(scenarios[0]["stack"], "bare");
    assert_eq!(scenarios[0]["wires"][0]["lost"], 0);
}

#[test]
fn the_stacks_scenario_file_loads() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/stacks.toml");
    let scenarios = loadgen::result::Scenario::load(&path).unwrap();
    assert!(scenarios.iter().all(|s| s.stacks.len() == 3));
    let sizes: Vec<usize> = scenarios.iter().map(|s| s.connections).collect();
    assert!(
        sizes.contains(&1_000) && sizes.contains(&10_000),
        "{sizes:?}"
    );
}
