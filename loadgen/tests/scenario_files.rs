//! The benchmark scenario files shipped in loadgen/scenarios/ stay valid.

#[test]
fn every_shipped_scenario_file_loads() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            let scenarios = loadgen::result::Scenario::load(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            assert!(!scenarios.is_empty(), "{}", path.display());
            seen += 1;
        }
    }
    assert!(
        seen >= 3,
        "found {seen} scenario files in {}",
        dir.display()
    );
}
