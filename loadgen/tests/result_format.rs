//! result.json keeps its layout: a scenario's section (`chat`, `echo`,
//! `faults`, `limit`) is one field named after it, read into the
//! `result::Section` enum and written back in the same place, as when the
//! sections were four optional fields.

use std::path::Path;

use loadgen::result::{RunResult, Section};

/// The committed reference run: a suite with every kind of section.
fn reference() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../results/reference/result.json")
}

/// `"key": number` (the number may differ: serde_json reads floats to the
/// nearest, not always the exact, value).
fn number_line(line: &str) -> Option<&str> {
    let (key, value) = line.trim().split_once(": ")?;
    let value = value.trim_end_matches(',');
    value.parse::<f64>().ok().map(|_| key)
}

#[test]
fn sections_are_read_and_written_back_in_place() {
    let text = std::fs::read_to_string(reference()).unwrap();
    let result = RunResult::load(&reference()).unwrap();
    let kinds: Vec<&str> = result
        .scenarios
        .iter()
        .map(|s| s.section.name().unwrap_or("feed"))
        .collect();
    for kind in ["feed", "chat", "echo", "faults", "limit"] {
        assert!(
            kinds.contains(&kind),
            "the reference holds a {kind} scenario: {kinds:?}"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let again = std::fs::read_to_string(result.save(dir.path()).unwrap()).unwrap();
    let (a, b): (Vec<&str>, Vec<&str>) = (text.lines().collect(), again.lines().collect());
    assert_eq!(a.len(), b.len(), "the same number of lines");
    for (n, (x, y)) in a.iter().zip(&b).enumerate() {
        if x != y {
            assert!(
                number_line(x).is_some() && number_line(x) == number_line(y),
                "line {}: `{x}` became `{y}`",
                n + 1
            );
        }
    }
}

#[test]
fn a_scenario_with_two_sections_is_refused() {
    let text = std::fs::read_to_string(reference()).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&text).unwrap();
    let scenarios = value["scenarios"].as_array_mut().unwrap();
    let chat = scenarios
        .iter()
        .find_map(|s| s.get("chat").cloned())
        .expect("a chat section");
    let faults = scenarios
        .iter_mut()
        .find(|s| s.get("faults").is_some())
        .expect("a faults scenario");
    faults["chat"] = chat;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("result.json");
    std::fs::write(&path, value.to_string()).unwrap();
    let err = RunResult::load(&path).unwrap_err().to_string();
    assert!(err.contains("chat and faults"), "{err}");
    assert!(matches!(Section::default(), Section::Feed));
}
