//! `results/schema.json`: the JSON Schema of `result.json`, generated from
//! the result types by `loadgen schema`. The committed file must be what the
//! types give today, and every committed `result.json` (the reference run,
//! the test fixtures) must validate against it.
//!
//! After an intended change to the result types, regenerate it with
//! `cargo run -p loadgen -- schema > results/schema.json` and review the diff.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("loadgen sits in the workspace")
        .to_path_buf()
}

fn committed_schema() -> serde_json::Value {
    let path = root().join("results/schema.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("results/schema.json is JSON")
}

/// Every `result.json` under `dir`.
fn result_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            result_files(&path, out);
        } else if path.file_name().is_some_and(|n| n == "result.json") {
            out.push(path);
        }
    }
}

#[test]
fn the_committed_schema_is_what_the_types_give() {
    let out = Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .arg("schema")
        .output()
        .expect("the loadgen binary runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("loadgen schema prints JSON");
    assert_eq!(printed, loadgen::result::RunResult::schema());
    assert!(
        printed == committed_schema(),
        "results/schema.json differs from the result types: regenerate it with \
         `cargo run -p loadgen -- schema > results/schema.json` and review the diff"
    );
}

#[test]
fn every_committed_result_validates_against_the_schema() {
    let validator =
        jsonschema::validator_for(&committed_schema()).expect("results/schema.json is a schema");
    let mut files = Vec::new();
    result_files(&root().join("results"), &mut files);
    result_files(&root().join("loadgen/tests/fixtures"), &mut files);
    assert!(files.len() >= 4, "{files:?}");
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&value)
            .take(5)
            .map(|e| format!("{} at {}", e, e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", path.display());
    }
}

/// The validator is not a rubber stamp: an unknown wire, a missing field
/// and a negative count are each refused.
#[test]
fn a_broken_result_does_not_validate() {
    let validator =
        jsonschema::validator_for(&committed_schema()).expect("results/schema.json is a schema");
    let text =
        std::fs::read_to_string(root().join("loadgen/tests/fixtures/two-scenarios/result.json"))
            .unwrap();
    let good: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert!(validator.is_valid(&good));

    let mut bad = good.clone();
    bad["scenarios"][0]["wires"][0]["wire"] = "sse-h9".into();
    assert!(!validator.is_valid(&bad), "an unknown wire");

    let mut bad = good.clone();
    bad.as_object_mut().unwrap().remove("environment");
    assert!(!validator.is_valid(&bad), "no environment");

    let mut bad = good.clone();
    bad["scenarios"][0]["wires"][0]["connections"] = (-3).into();
    assert!(!validator.is_valid(&bad), "negative connections");
}
