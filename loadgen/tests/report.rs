//! Reports, comparison and merge, through the real binary where a user
//! would meet them.
//!
//! The fixture `fixtures/two-scenarios/result.json` is a real run:
//! `loadgen run --scenario S --name fixture` with two scenarios (20
//! connections at 20 Hz, 50 at 10 Hz, 3 s each) on sse-h1 and ws-h1.
//!
//! `fixtures/limit/result.json` is the `limit` scenario of the committed
//! reference run (`results/reference`), cut down to eleven of its cases.
//!
//! Golden files: after an intended change to the reports, regenerate them
//! with `UPDATE_GOLDEN=1 cargo test -p loadgen --test report`, look at the
//! diff, and commit it with the change.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use loadgen::measure::{IdTracker, Recorder};
use loadgen::result::HistogramSummary;
use loadgen::result::RunResult;

const FIXTURE: &str = "tests/fixtures/two-scenarios/result.json";
const LIMIT_FIXTURE: &str = "tests/fixtures/limit/result.json";

fn manifest(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

fn fixture() -> RunResult {
    RunResult::load(&manifest(FIXTURE)).expect("the fixture loads")
}

fn loadgen(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .expect("the loadgen binary runs")
}

fn os<S: AsRef<std::ffi::OsStr> + ?Sized>(s: &S) -> &std::ffi::OsStr {
    s.as_ref()
}

/// A temporary run folder holding `result`.
fn run_dir(result: &RunResult) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    result.save(dir.path()).unwrap();
    dir
}

/// Compares `actual` with the golden file, or rewrites it under UPDATE_GOLDEN.
fn golden(name: &str, actual: &str) {
    let path = manifest(&format!("tests/golden/{name}"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}; create it with UPDATE_GOLDEN=1 cargo test -p loadgen --test report",
            path.display()
        )
    });
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or("the length".to_string(), |i| format!("line {}", i + 1));
        panic!(
            "{name} differs from {} at {line}; if the change is intended, run \
             UPDATE_GOLDEN=1 cargo test -p loadgen --test report and review the diff",
            path.display()
        );
    }
}

/// `loadgen report` on a copy of `fixture`: the reports match the golden
/// files in `golden/<name>/`, rendering again gives the same bytes, and
/// every chart the Markdown links is written beside it. Returns the
/// Markdown.
fn check_reports(fixture: &str, name: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(manifest(fixture), dir.path().join("result.json")).unwrap();
    let out = loadgen(&[os("report"), dir.path().as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    // Twice, from the file: the same bytes.
    let result = RunResult::load(&manifest(fixture)).expect("the fixture loads");
    let again = loadgen::report::render(&result, &Default::default()).unwrap();
    assert_eq!(again.markdown, md);
    assert_eq!(again.html, html);
    golden(&format!("{name}/report.md"), &md);
    golden(&format!("{name}/report.html"), &html);
    // Every chart the Markdown links is written beside it.
    for chart in &again.charts {
        let path = dir.path().join("charts").join(&chart.file);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), chart.svg);
        assert!(md.contains(&format!("](charts/{})", chart.file)));
    }
    md
}

#[test]
fn reports_from_the_fixture_match_the_golden_files_and_are_deterministic() {
    check_reports(FIXTURE, "two-scenarios");
}

#[test]
fn limit_reports_match_the_golden_files_and_show_the_limit_section() {
    let md = check_reports(LIMIT_FIXTURE, "limit");
    assert!(md.contains("## Scenario limit: connection limits"), "{md}");
    assert!(md.contains("](charts/limit-opened.svg)"), "{md}");
    assert!(!md.contains("Not shown in this report"), "{md}");
    assert!(!md.contains("section `limit`"), "{md}");
}

/// The text of every `<text>` element under `node`, trimmed.
fn texts<'a>(node: roxmltree::Node<'a, '_>) -> Vec<&'a str> {
    node.descendants()
        .filter(|n| n.tag_name().name() == "text")
        .filter_map(|n| n.text())
        .map(str::trim)
        .collect()
}

#[test]
fn limit_html_holds_the_table_and_the_opened_chart() {
    let result = RunResult::load(&manifest(LIMIT_FIXTURE)).expect("the fixture loads");
    let report = loadgen::report::render(&result, &Default::default()).unwrap();
    assert_eq!(report.charts.len(), 1);
    assert_eq!(report.charts[0].file, "limit-opened.svg");
    let body = report.html.trim_start_matches("<!DOCTYPE html>");
    let doc = roxmltree::Document::parse(body).expect("report.html is well-formed XML");
    let figure = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("chart-limit-opened"))
        .expect("the limit chart is inline");
    let labels = texts(figure);
    for label in [
        "h1 1 tab",
        "h1 2 tabs",
        "h2 1 tab",
        "h2 2 tabs",
        "no limit (opened = asked)",
        "streams asked (log scale)",
        "streams opened (log scale)",
    ] {
        assert!(labels.contains(&label), "{label}: {labels:?}");
    }
    // One table row per case, the GET's fate in words.
    let table = doc
        .descendants()
        .find(|n| {
            n.tag_name().name() == "table"
                && n.descendants()
                    .any(|c| c.tag_name().name() == "th" && c.text() == Some("GET while held"))
        })
        .expect("the limit table");
    let rows: Vec<Vec<&str>> = table
        .descendants()
        .filter(|n| n.tag_name().name() == "tr")
        .skip(1)
        .map(|tr| {
            tr.children()
                .filter(|c| c.tag_name().name() == "td")
                .map(|c| c.text().unwrap_or(""))
                .collect()
        })
        .collect();
    let cases = &result.scenarios[0].limit().unwrap().cases;
    assert_eq!(rows.len(), cases.len());
    let row = rows
        .iter()
        .find(|r| r[0] == "h1 1x8 +1ws")
        .expect("a row for h1 1x8");
    assert_eq!(
        &row[1..],
        [
            "8",
            "6",
            "2",
            "6",
            "674µs",
            "820µs",
            "stalled >1000 ms, then 0.9 ms after 3 closed",
            "1/1",
            "none"
        ]
    );
    assert!(rows.iter().any(|r| r[0] == "h2 1x120" && r[2] == "100"));
    assert!(!report.html.contains("Not shown in this report"));
}

#[test]
fn html_is_well_formed_self_contained_and_holds_every_chart() {
    let report = loadgen::report::render(&fixture(), &Default::default()).unwrap();
    let body = report.html.trim_start_matches("<!DOCTYPE html>");
    let doc = roxmltree::Document::parse(body).expect("report.html is well-formed XML");
    let svgs: Vec<_> = doc
        .descendants()
        .filter(|n| n.tag_name().name() == "svg")
        .collect();
    let kinds = [
        "latency",
        "events",
        "connect",
        "first-event",
        "memory",
        "cpu",
    ];
    assert_eq!(svgs.len(), 2 * kinds.len(), "six charts per scenario");
    for scenario in ["feed-20", "feed-50"] {
        for kind in kinds {
            let id = format!("chart-{scenario}-{kind}");
            let figure = doc
                .descendants()
                .find(|n| n.attribute("id") == Some(id.as_str()))
                .unwrap_or_else(|| panic!("no figure {id}"));
            let texts: Vec<&str> = figure
                .descendants()
                .filter(|n| n.tag_name().name() == "text")
                .filter_map(|n| n.text())
                .map(str::trim)
                .collect();
            assert!(texts.contains(&"sse-h1"), "{id} names sse-h1: {texts:?}");
            assert!(texts.contains(&"ws-h1"), "{id} names ws-h1: {texts:?}");
        }
    }
    // Nothing is fetched: no scripts, stylesheets, images or frames.
    for n in doc.descendants() {
        let tag = n.tag_name().name();
        assert!(
            !["script", "link", "img", "iframe"].contains(&tag),
            "<{tag}>"
        );
        assert!(n.attribute("src").is_none());
    }
    assert!(!report.html.contains("href=\"http"));
}

#[test]
fn report_refuses_unknown_schema_versions_and_corrupt_json_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("result.json");
    let text = std::fs::read_to_string(manifest(FIXTURE)).unwrap();
    std::fs::write(
        &path,
        text.replacen("\"schema_version\": 1", "\"schema_version\": 99", 1),
    )
    .unwrap();
    let out = loadgen(&[os("report"), dir.path().as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("schema_version 99"), "{err}");
    assert!(err.contains("reads version 1"), "{err}");

    std::fs::write(&path, &text[..text.len() / 2]).unwrap();
    let out = loadgen(&[os("report"), dir.path().as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("is not a result file"), "{err}");
    assert!(err.contains("result.json"), "{err}");
    assert!(!dir.path().join("report.md").exists());

    let out = loadgen(&[os("report"), dir.path().join("nothing-here").as_os_str()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("nothing-here"), "{err}");
}

/// Two recorders with different streams, and one that recorded both.
fn streams() -> (Recorder, Recorder, Recorder) {
    let start = 1_000_000_000_000;
    let mut a = Recorder::with_start_unix_ns(start);
    let mut b = Recorder::with_start_unix_ns(start);
    let mut both = Recorder::with_start_unix_ns(start);
    // Each recorder here is one connection: one id tracker each.
    let (mut ids_a, mut ids_b, mut ids_both) =
        (IdTracker::new(), IdTracker::new(), IdTracker::new());
    for i in 0..5_000u64 {
        // Latencies from 50 µs to ~2 s, spread unevenly between the two.
        let lat_ns = 50_000 + (i * i * 7_919) % 2_000_000_000;
        let sent = start + i * 1_000_000;
        let (one, ids, id) = if i % 3 == 0 {
            (&mut a, &mut ids_a, i / 3)
        } else {
            (&mut b, &mut ids_b, i)
        };
        one.record_event(ids, id, sent, sent + lat_ns, 100);
        both.record_event(&mut ids_both, id, sent, sent + lat_ns, 100);
        if i % 50 == 0 {
            let d = std::time::Duration::from_micros(300 + i);
            one.record_connect(d);
            both.record_connect(d);
        }
    }
    (a, b, both)
}

/// Equal histograms (every count) and equal headline numbers. The encoded
/// bytes may differ: they carry the histogram's current size, which depends
/// on how it grew.
fn same_histogram(a: &HistogramSummary, b: &HistogramSummary) {
    let (ha, hb) = (a.decode().unwrap(), b.decode().unwrap());
    // hdrhistogram's == walks the left side's counts only: ask both ways.
    assert!(ha.eq(&hb), "the histograms differ");
    assert!(hb.eq(&ha), "the histograms differ");
    let headline = |s: &HistogramSummary| (s.count, s.min, s.p50, s.p90, s.p99, s.p999, s.max);
    assert_eq!(headline(a), headline(b));
    assert_eq!(a.mean, b.mean);
}

fn with_recorder(mut r: RunResult, rec: &Recorder) -> RunResult {
    let snap = rec.snapshot().unwrap();
    for w in &mut r.scenarios[0].wires {
        w.latency_us = snap.latency_us.clone();
        w.latency_hold_us = Some(snap.latency_us.clone());
        w.connect_us = snap.connect_us.clone();
        w.first_event_us = snap.first_event_us.clone();
        w.recorder = snap.clone();
    }
    r.scenarios.truncate(1);
    r
}

#[test]
fn merge_equals_recording_both_streams_into_one_histogram() {
    let (a, b, both) = streams();
    let ra = with_recorder(fixture(), &a);
    let rb = with_recorder(fixture(), &b);
    let merged =
        loadgen::merge::merge(&[("a".into(), ra.clone()), ("b".into(), rb.clone())]).unwrap();
    let expected = both.snapshot().unwrap();
    for (w, (wa, wb)) in merged.scenarios[0]
        .wires
        .iter()
        .zip(ra.scenarios[0].wires.iter().zip(&rb.scenarios[0].wires))
    {
        same_histogram(&w.latency_us, &expected.latency_us);
        same_histogram(&w.connect_us, &expected.connect_us);
        same_histogram(&w.recorder.latency_us, &expected.latency_us);
        same_histogram(w.latency_hold_us.as_ref().unwrap(), &expected.latency_us);
        assert_eq!(w.recorder.counters.events, 5_000);
        assert_eq!(w.recorder.events_per_second, expected.events_per_second);
        assert_eq!(w.connections, wa.connections + wb.connections);
        assert_eq!(w.events_in_hold, wa.events_in_hold + wb.events_in_hold);
        assert!((w.events_per_s - (wa.events_per_s + wb.events_per_s)).abs() < 1e-9);
        assert_eq!(
            w.loadgen.cpu_us_hold,
            wa.loadgen.cpu_us_hold + wb.loadgen.cpu_us_hold
        );
        let (sa, sb, s) = (
            wa.server.as_ref().unwrap(),
            wb.server.as_ref().unwrap(),
            w.server.as_ref().unwrap(),
        );
        // Separate (embedded) servers: their costs add up.
        assert_eq!(s.cpu_us_hold, sa.cpu_us_hold + sb.cpu_us_hold);
        assert_eq!(s.rss_held, sa.rss_held + sb.rss_held);
    }
    assert_eq!(merged.scenarios[0].scenario.connections, 40);
    assert_eq!(
        merged.environment.command_line,
        ["loadgen", "merge", "a", "b"]
    );
}

#[test]
fn merge_through_the_binary_writes_a_result_and_reports() {
    let (a, b) = (run_dir(&fixture()), run_dir(&fixture()));
    let out_dir = tempfile::tempdir().unwrap();
    let out = loadgen(&[
        os("merge"),
        a.path().as_os_str(),
        b.path().as_os_str(),
        os("--out"),
        out_dir.path().as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let merged = RunResult::load(&out_dir.path().join("result.json")).unwrap();
    let w = &merged.scenarios[0].wires[0];
    let one = &fixture().scenarios[0].wires[0];
    assert_eq!(w.latency_us.count, 2 * one.latency_us.count);
    assert_eq!(
        w.latency_us.p99, one.latency_us.p99,
        "the same stream twice"
    );
    assert!(out_dir.path().join("report.md").exists());
    assert!(out_dir.path().join("report.html").exists());
}

#[test]
fn merge_refuses_different_scenarios_with_a_clear_error() {
    let mut other = fixture();
    other.scenarios[1].scenario.name = "feed-9999".into();
    let err = loadgen::merge::merge(&[("a".into(), fixture()), ("b".into(), other)])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("feed-9999") && err.contains("same scenarios"),
        "{err}"
    );

    let mut other = fixture();
    other.scenarios[0].server.rate_hz = 99.0;
    let err = loadgen::merge::merge(&[("a".into(), fixture()), ("b".into(), other)])
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("rate_hz") && err.contains("different scenarios"),
        "{err}"
    );

    let mut other = fixture();
    other.scenarios[0].wires.pop();
    let err = loadgen::merge::merge(&[("a".into(), fixture()), ("b".into(), other)])
        .unwrap_err()
        .to_string();
    assert!(err.contains("same wires"), "{err}");

    let a = run_dir(&fixture());
    let out = loadgen(&[os("merge"), a.path().as_os_str(), os("--out"), os("/tmp/x")]);
    assert!(!out.status.success(), "one source is not a merge");
}

#[test]
fn compare_passes_an_equal_pair() {
    let (a, b) = (run_dir(&fixture()), run_dir(&fixture()));
    let out = loadgen(&[
        os("compare"),
        a.path().as_os_str(),
        b.path().as_os_str(),
        os("--fail-on-regression"),
    ]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(stdout.contains("No regression"), "{stdout}");
    assert!(!stdout.contains("| REGRESSION"), "{stdout}");
    let md = std::fs::read_to_string(b.path().join("compare.md")).unwrap();
    assert_eq!(md, stdout);
}

#[test]
fn compare_flags_a_constructed_regression() {
    let mut worse = fixture();
    {
        let w = &mut worse.scenarios[1].wires[0];
        w.latency_us.p99 = w.latency_us.p99 * 3 / 2; // +50 %
        w.latency_us.p50 = w.latency_us.p50 * 105 / 100; // +5 %: within 10 %
        w.lost += 1;
    }
    let (a, b) = (run_dir(&fixture()), run_dir(&worse));
    let out_dir = tempfile::tempdir().unwrap();
    let out = loadgen(&[
        os("compare"),
        a.path().as_os_str(),
        b.path().as_os_str(),
        os("--threshold"),
        os("10%"),
        os("--fail-on-regression"),
        os("--out"),
        out_dir.path().as_os_str(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(out_dir.path().join("compare.md")).unwrap();
    assert!(md.contains("2 REGRESSIONS"), "{md}");
    let flagged: Vec<&str> = md.lines().filter(|l| l.contains("| REGRESSION")).collect();
    assert_eq!(flagged.len(), 2, "{md}");
    assert!(flagged
        .iter()
        .any(|l| l.contains("latency p99") && l.contains("+50.0 %")));
    assert!(flagged.iter().any(|l| l.contains("lost")));
    assert!(flagged
        .iter()
        .all(|l| l.contains("feed-50") && l.contains("sse-h1")));

    // Without --fail-on-regression it reports but succeeds.
    let out = loadgen(&[os("compare"), a.path().as_os_str(), b.path().as_os_str()]);
    assert!(out.status.success());
    // A threshold above the change lets latency pass, never loss.
    let c = loadgen::compare::compare(&fixture(), &worse, 0.6);
    assert_eq!(c.regressions(), 1);
}

const SUITE_FIXTURE: &str = "tests/fixtures/suite/result.json";

/// The Answer section of a Markdown report: from `## Answer` to the next
/// level-2 heading.
fn answer_of(md: &str) -> &str {
    let start = md.find("\n## Answer\n").expect("an Answer section") + 1;
    let end = md[start + 3..]
        .find("\n## ")
        .map_or(md.len(), |i| start + 3 + i + 1);
    &md[start..end]
}

/// The Answer is the first section of both reports, every paragraph of it
/// links to a section that exists, and it is generated: the suite run and
/// the two-scenario run (different scenarios, different numbers) answer
/// differently, each matching its golden file.
#[test]
fn the_answer_comes_first_links_its_sources_and_follows_the_numbers() {
    let mut answers = Vec::new();
    for (fixture, name) in [(SUITE_FIXTURE, "suite"), (FIXTURE, "two-scenarios")] {
        let result = RunResult::load(&manifest(fixture)).expect("the fixture loads");
        let report = loadgen::report::render(&result, &Default::default()).unwrap();
        let md = &report.markdown;
        let first = md.lines().find(|l| l.starts_with("## ")).unwrap();
        assert_eq!(first, "## Answer", "{name}");
        let answer = answer_of(md);
        golden(&format!("answer/{name}.md"), answer);
        // Every paragraph of prose carries a link to its section, and every
        // link's target is a heading id of the HTML report.
        let body = report.html.trim_start_matches("<!DOCTYPE html>");
        let doc = roxmltree::Document::parse(body).expect("report.html is well-formed XML");
        let ids: Vec<&str> = doc
            .descendants()
            .filter_map(|n| n.attribute("id"))
            .collect();
        let h2: Vec<&str> = doc
            .descendants()
            .filter(|n| n.tag_name().name() == "h2")
            .filter_map(|n| n.text())
            .collect();
        assert_eq!(h2.first(), Some(&"Answer"), "{name}: {h2:?}");
        let prose: Vec<&str> = answer
            .split("\n\n")
            .skip(1)
            .take_while(|p| !p.starts_with("### "))
            .collect();
        assert!(!prose.is_empty(), "{name}");
        for p in prose {
            assert!(p.contains("](#"), "{name}: no link in {p}");
        }
        for link in answer.split("](#").skip(1) {
            let id = &link[..link.find(')').unwrap()];
            assert!(ids.contains(&id), "{name}: no section #{id} in {ids:?}");
        }
        // The same links, live in the HTML.
        assert!(
            doc.descendants().any(|n| n.tag_name().name() == "a"
                && n.attribute("href")
                    .is_some_and(|h| h.starts_with("#scenario-feed-"))),
            "{name}"
        );
        answers.push(answer.to_string());
    }
    assert_ne!(answers[0], answers[1]);
    // The two-scenario run measured no limit, chat, echo or faults: those
    // sentences are left out, and their cells say so.
    let small = &answers[1];
    for absent in [
        "Over HTTP/1.1 a browser",
        "round trip",
        "reconnected",
        "first token p50",
    ] {
        assert!(!small.contains(absent), "{absent}: {small}");
    }
    assert!(small.contains("| many tabs "), "{small}");
    assert!(small.contains("not measured in this run"), "{small}");
}

/// Change one number and the answer changes with it: WebSocket made the
/// cheaper wire in memory reads as SSE costing more.
#[test]
fn the_answer_names_whichever_wire_the_numbers_favour() {
    let mut result = RunResult::load(&manifest(SUITE_FIXTURE)).expect("the fixture loads");
    let before = loadgen::report::render(&result, &Default::default()).unwrap();
    assert!(
        answer_of(&before.markdown).contains("(2.81× less for SSE)"),
        "{}",
        answer_of(&before.markdown)
    );
    let largest = result
        .scenarios
        .iter_mut()
        .max_by_key(|s| {
            if s.wires.is_empty() {
                0
            } else {
                s.scenario.connections
            }
        })
        .unwrap();
    for w in &mut largest.wires {
        let server = w.server.as_mut().unwrap();
        server.rss_per_connection = if w.wire == loadgen::wire::Wire::WsH1 {
            2048.0
        } else {
            8192.0
        };
    }
    let after = loadgen::report::render(&result, &Default::default()).unwrap();
    let answer = answer_of(&after.markdown);
    assert!(
        answer.contains("8.0KiB on sse-h1 against 2.0KiB on ws-h1 (4.00× more for SSE)"),
        "{answer}"
    );
}

/// Chat, echo and faults each get their charts, every wire named in each.
#[test]
fn chat_echo_and_faults_have_charts_naming_every_wire() {
    let result = RunResult::load(&manifest(SUITE_FIXTURE)).expect("the fixture loads");
    let report = loadgen::report::render(&result, &Default::default()).unwrap();
    let body = report.html.trim_start_matches("<!DOCTYPE html>");
    let doc = roxmltree::Document::parse(body).expect("report.html is well-formed XML");
    for id in [
        "chart-chat-ttft",
        "chart-chat-inter-token",
        "chart-echo-rtt-1",
        "chart-echo-rtt-100",
        "chart-echo-rtt-1000",
        "chart-faults-reconnect",
        "chart-faults-recovery",
    ] {
        let figure = doc
            .descendants()
            .find(|n| n.attribute("id") == Some(id))
            .unwrap_or_else(|| panic!("no figure {id}"));
        let labels = texts(figure);
        for wire in ["sse-h1", "sse-h2", "sse-h2c", "ws-h1"] {
            assert!(labels.contains(&wire), "{id} names {wire}: {labels:?}");
        }
        assert!(report
            .markdown
            .contains(&format!("](charts/{}.svg)", &id[6..])));
    }
    // The values are on the bars: the reference run's ws-h1 echo p50 at
    // 1,000 clients, 11.8 ms.
    let echo = doc
        .descendants()
        .find(|n| n.attribute("id") == Some("chart-echo-rtt-1000"))
        .unwrap();
    assert!(texts(echo).contains(&"11.8ms"), "{:?}", texts(echo));
}

/// `loadgen report --index DIR` on three small runs and a broken one: every
/// run listed newest first with its date, commit, scenarios, completeness
/// and headline, linking to its report; the broken one listed with why.
#[test]
fn the_index_lists_every_run_newest_first_with_links() {
    let dir = tempfile::tempdir().unwrap();
    let mut old = fixture();
    old.started_at = "2026-01-05T10:00:00Z".into();
    old.environment.git_commit = "aaaaaaaaaaaa".into();
    old.save(&dir.path().join("old-run")).unwrap();
    let mut new = RunResult::load(&manifest(LIMIT_FIXTURE)).unwrap();
    new.started_at = "2026-03-01T10:00:00Z".into();
    new.environment.git_commit = "bbbbbbbbbbbb".into();
    new.complete = false;
    new.save(&dir.path().join("new-run")).unwrap();
    let mut middle = fixture();
    middle.started_at = "2026-02-01T10:00:00Z".into();
    middle.scenarios.truncate(1);
    middle.save(&dir.path().join("middle-run")).unwrap();
    std::fs::create_dir(dir.path().join("broken")).unwrap();
    std::fs::write(
        dir.path().join("broken/result.json"),
        "{\"schema_version\": 1",
    )
    .unwrap();
    std::fs::create_dir(dir.path().join("not-a-run")).unwrap();

    let out = loadgen(&[os("report"), os("--index"), dir.path().as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let md = std::fs::read_to_string(dir.path().join("index.md")).unwrap();
    let html = std::fs::read_to_string(dir.path().join("index.html")).unwrap();
    let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| [")).collect();
    assert_eq!(rows.len(), 3, "{md}");
    assert!(rows[0].contains("[new-run](new-run/report.md)"), "{md}");
    assert!(
        rows[1].contains("[middle-run](middle-run/report.md)"),
        "{md}"
    );
    assert!(rows[2].contains("[old-run](old-run/report.md)"), "{md}");
    assert!(
        rows[0].contains("bbbbbbbbbbbb") && rows[0].contains("| NO "),
        "{md}"
    );
    assert!(rows[0].contains("| limit "), "{md}");
    assert!(rows[0].contains("2026-03-01T10:00:00Z"), "{md}");
    assert!(
        rows[2].contains("aaaaaaaaaaaa") && rows[2].contains("| yes "),
        "{md}"
    );
    assert!(rows[2].contains("feed-20, feed-50"), "{md}");
    // The headline: the largest feed scenario's p99 per wire.
    let p99 = loadgen::report::latency_of(&old.scenarios[1].wires[0]).p99;
    assert!(
        rows[2].contains(&format!("feed-50: sse-h1 p99 {}", loadgen::report::us(p99))),
        "{md}"
    );
    assert!(rows[1].contains("feed-20: sse-h1"), "{md}");
    assert!(!md.contains("not-a-run"), "{md}");
    assert!(
        md.contains("| broken ") && md.contains("unreadable:"),
        "{md}"
    );
    let body = html.trim_start_matches("<!DOCTYPE html>");
    let doc = roxmltree::Document::parse(body).expect("index.html is well-formed XML");
    let links: Vec<&str> = doc
        .descendants()
        .filter_map(|n| n.attribute("href"))
        .filter(|h| !h.starts_with('#'))
        .collect();
    assert_eq!(
        links,
        [
            "new-run/report.html",
            "middle-run/report.html",
            "old-run/report.html"
        ]
    );

    let out = loadgen(&[
        os("report"),
        os("--index"),
        dir.path().join("nothing-here").as_os_str(),
    ]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(err.contains("nothing-here"), "{err}");
}

/// Through an edge, the Answer names the edge's stream limit and the choose
/// table's proxy row shows what each wire did through it.
#[test]
fn the_answer_speaks_of_the_proxy_when_the_run_went_through_one() {
    let mut result = fixture();
    let mut through = result.scenarios[0].clone();
    through.scenario.name = "feed-20-nginx".into();
    through.server.edge = Some(loadgen::result::EdgeSetup {
        kind: "nginx".into(),
        config: "tuned".into(),
        url: "https://127.0.0.1:1".into(),
        version: "1.22".into(),
        h2_max_concurrent_streams: Some(128),
        enable_connect_protocol: false,
        config_text: "http2_max_concurrent_streams 128;".into(),
    });
    result.scenarios.push(through);
    let report = loadgen::report::render(&result, &Default::default()).unwrap();
    let answer = answer_of(&report.markdown);
    assert!(
        answer.contains("(nginx tuned: 128 streams; [through a proxy](#through-a-proxy))"),
        "{answer}"
    );
    let row = answer
        .lines()
        .find(|l| l.starts_with("| behind a proxy"))
        .unwrap();
    assert!(
        row.contains("nginx tuned (sse-h1): 20 of 20 open, p99 "),
        "{row}"
    );
    assert!(row.contains("nginx tuned (ws-h1): 20 of 20 open"), "{row}");
    assert!(report.html.contains("id=\"through-a-proxy\""));
}

const NETWORK_FIXTURE: &str = "tests/fixtures/network/result.json";

/// Over emulated links the Answer speaks of them: the lossiest link's p99
/// per wire and how many streams an HTTP/2 stall held back, the longest
/// outage's recovery per wire, and the choose table's mobile row, each
/// linked to the "Emulated links" section. The fixture is three scenarios
/// (lossy-3%, mobile, outage-20s) of a real `suite --network-only` run (a
/// debug build on a busy machine, recorded before a connection broken by
/// the outage counted as closed rather than as a protocol error).
#[test]
fn the_answer_speaks_of_the_emulated_links() {
    let result = RunResult::load(&manifest(NETWORK_FIXTURE)).expect("the fixture loads");
    let report = loadgen::report::render(&result, &Default::default()).unwrap();
    let answer = answer_of(&report.markdown);
    golden("answer/network.md", answer);
    assert!(answer.contains("[lossy-3%](#emulated-links)"), "{answer}");
    assert!(answer.contains("[outage-20s](#emulated-links)"), "{answer}");
    assert!(answer.contains("stall held back"), "{answer}");
    let mobile = answer
        .lines()
        .find(|l| l.starts_with("| mobile"))
        .expect("a mobile row");
    assert!(
        !mobile.contains(loadgen::report::NOT_MEASURED),
        "measured on every wire: {mobile}"
    );
    assert!(report.html.contains(r#"id="emulated-links""#));
    // No loopback feed scenario in this run: no sentence about one.
    assert!(!answer.contains("server memory per connection"), "{answer}");
}
