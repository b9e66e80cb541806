//! Every number flag of every `loadgen` subcommand, given anything: through
//! the same parse-and-check path `main` uses (`loadgen::cli::parse`), it is
//! either refused with a usage error (exit status 2) naming the flag, or
//! accepted exactly as typed (never clamped) with every duration derived
//! from it finite; and nothing panics. A few cases go through the built
//! binary too.

use std::time::{Duration, Instant};

use loadgen::cli::{parse, Invocation, Measure};
use loadgen::run::WireSpec;
use loadgen::scenarios::Extra;
use proptest::prelude::*;

/// How a flag's value reads.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Number,
    Duration,
    /// `--ramp`: a number or a duration.
    Ramp,
    /// `--clients`: a comma-separated list of numbers.
    List,
    /// Parsed by the server's own config (`loadgen serve`): no panic is all
    /// this checks.
    Server,
}

/// (subcommand and fixed arguments, flag, kind).
const FLAGS: &[(&[&str], &str, Kind)] = &[
    (&["run"], "--connections", Kind::Number),
    (&["run"], "--ramp", Kind::Ramp),
    (&["run"], "--duration", Kind::Duration),
    (&["run"], "--rate", Kind::Number),
    (&["run"], "--payload-bytes", Kind::Number),
    (&["run"], "--h2-conns", Kind::Number),
    (&["run"], "--processes", Kind::Number),
    (&["run"], "--server-workers", Kind::Number),
    (&["run", "--connections", "1000000"], "--ramp", Kind::Ramp),
    (&["suite"], "--duration", Kind::Duration),
    (&["suite"], "--server-workers", Kind::Number),
    (&["chat"], "--users", Kind::Number),
    (&["chat"], "--questions", Kind::Number),
    (&["chat"], "--tokens", Kind::Number),
    (&["chat"], "--token-rate", Kind::Number),
    (&["chat"], "--h1-pool-limit", Kind::Number),
    (
        &["chat", "--tokens", "100000"],
        "--token-rate",
        Kind::Number,
    ),
    (&["echo"], "--clients", Kind::List),
    (&["echo"], "--duration", Kind::Duration),
    (&["faults"], "--connections", Kind::Number),
    (&["faults"], "--rate", Kind::Number),
    (&["faults"], "--replay", Kind::Number),
    (&["faults"], "--retry-ms", Kind::Number),
    (&["faults"], "--drop-fraction", Kind::Number),
    (&["faults"], "--drop-every", Kind::Duration),
    (&["faults"], "--duration", Kind::Duration),
    (&["faults"], "--outage-ms", Kind::Number),
    (&["limit"], "--tabs", Kind::Number),
    (&["limit"], "--streams-per-tab", Kind::Number),
    (&["limit"], "--profiles", Kind::Number),
    (&["limit"], "--hosts", Kind::Number),
    (&["limit"], "--ws-per-tab", Kind::Number),
    (&["limit"], "--h1-per-host", Kind::Number),
    (&["limit"], "--h2-default-streams", Kind::Number),
    (&["limit"], "--get-cap", Kind::Duration),
    (&["compare", "a", "b"], "--threshold", Kind::Number),
    (&["serve"], "--rate", Kind::Server),
    (&["serve"], "--payload-bytes", Kind::Server),
    (&["serve"], "--replay", Kind::Server),
    (&["serve"], "--fanout-buffer", Kind::Server),
    (&["serve"], "--retry-ms", Kind::Server),
    (&["serve"], "--keepalive", Kind::Server),
    (&["serve"], "--ws-max-frame", Kind::Server),
    (&["serve"], "--max-connections", Kind::Server),
    (&["serve"], "--shutdown-timeout", Kind::Server),
    (&["serve"], "--workers", Kind::Server),
    (&["serve"], "--backlog", Kind::Server),
    (&["serve"], "--h2-initial-window-size", Kind::Server),
    (
        &["serve"],
        "--h2-initial-connection-window-size",
        Kind::Server,
    ),
    (&["serve"], "--chaos-drop-fraction", Kind::Server),
    (&["serve"], "--chaos-every", Kind::Server),
    (&["serve"], "--chat-tokens", Kind::Server),
    (&["serve"], "--chat-token-rate", Kind::Server),
    (&["serve"], "--echo-queue", Kind::Server),
];

/// Values that broke things once, or sit on a range's edge.
const EDGES: &[&str] = &[
    "1e-300",
    "1e300",
    "-1e-300",
    "NaN",
    "inf",
    "-inf",
    "0",
    "-0",
    "-1",
    "",
    " ",
    "0.01",
    "0.009",
    "1",
    "1.5",
    "3600",
    "3600.001",
    "86400",
    "86401",
    "1000000",
    "1000001",
    "4294967295",
    "4294967296",
    "18446744073709551615",
    "18446744073709551616",
    "1e-400",
    "0x10",
    "1_000",
    "5%",
    "1ns",
    "1ms",
    "10s",
    "59s",
    "60s",
    "61s",
    "1h",
    "25h",
    "1e-300s",
    "100000000000000000000h",
    "1,2,3",
    "0,1",
    "1,,2",
    "1e6",
    "1e7",
    "9e15",
];

fn args_for(fixed: &[&str], flag: &str, value: &str) -> Vec<String> {
    let mut args = vec!["loadgen".to_string()];
    args.extend(fixed.iter().map(|s| s.to_string()));
    // `--flag=value`, so that a negative number is a value, not a flag.
    args.push(format!("{flag}={value}"));
    args
}

/// What a `--flag=value` may do, checked.
fn check(fixed: &[&str], flag: &str, kind: Kind, value: &str) -> Result<(), TestCaseError> {
    let args = args_for(fixed, flag, value);
    match parse(&args) {
        Err(e) => {
            prop_assert_eq!(e.exit_code(), 2, "{:?}: {}", args, e);
            let text = e.to_string();
            prop_assert!(
                text.contains(flag) || text.contains("(--"),
                "{:?}: the error names the flag: {}",
                args,
                text
            );
        }
        Ok(invocation) => usable(&invocation, flag, kind, value, &args)?,
    }
    Ok(())
}

/// An accepted value is exactly what was typed, and nothing derived from it
/// overflows.
fn usable(
    invocation: &Invocation,
    flag: &str,
    kind: Kind,
    value: &str,
    args: &[String],
) -> Result<(), TestCaseError> {
    let now = Instant::now();
    match invocation {
        Invocation::Measure(m) => {
            derived_durations(m, now, args)?;
            if kind == Kind::Number {
                if let Some(got) = typed_number(m, flag) {
                    let want: f64 = value.trim().parse().map_err(|_| {
                        TestCaseError::fail(format!("{args:?}: accepted a non-number"))
                    })?;
                    prop_assert_eq!(got, want, "{:?}: taken as typed, not clamped", args);
                }
            }
        }
        Invocation::Compare(c) => {
            let want: f64 = value
                .trim()
                .trim_end_matches('%')
                .trim()
                .parse()
                .unwrap_or(f64::NAN);
            prop_assert_eq!(c.threshold, want / 100.0, "{:?}", args);
            prop_assert!(c.threshold.is_finite() && c.threshold >= 0.0);
        }
        // The server's own flags: parsing them did not panic.
        Invocation::Serve { .. } => {}
        Invocation::Doctor(_) => {}
        other => prop_assert!(false, "{:?}: unexpected {:?}", args, other),
    }
    Ok(())
}

/// The number a flag ended up as, where the invocation keeps it as typed.
fn typed_number(m: &Measure, flag: &str) -> Option<f64> {
    let s = m.scenarios.first();
    let extra = m.extras.first();
    let limit = m.limits.first();
    let case = limit.and_then(|l| l.cases.first());
    Some(match (flag, extra) {
        ("--connections", Some(Extra::Faults(f))) => f.connections as f64,
        ("--connections", _) => s?.connections as f64,
        ("--rate", Some(Extra::Faults(f))) => f.rate_hz,
        ("--rate", _) => s?.rate_hz,
        ("--payload-bytes", _) => s?.payload_bytes as f64,
        ("--h2-conns", _) => s?.h2_conns? as f64,
        ("--processes", _) => s?.processes? as f64,
        ("--users", Some(Extra::Chat(c))) => c.users as f64,
        ("--questions", Some(Extra::Chat(c))) => c.questions as f64,
        ("--tokens", Some(Extra::Chat(c))) => f64::from(c.tokens),
        ("--token-rate", Some(Extra::Chat(c))) => c.token_rate,
        ("--h1-pool-limit", Some(Extra::Chat(c))) => c.h1_pool_limit? as f64,
        ("--replay", Some(Extra::Faults(f))) => f.replay as f64,
        ("--retry-ms", Some(Extra::Faults(f))) => f.retry_ms as f64,
        ("--drop-fraction", Some(Extra::Faults(f))) => f.drop_fraction,
        ("--outage-ms", Some(Extra::Faults(f))) => f.outage_ms? as f64,
        ("--tabs", _) => case?.tabs as f64,
        ("--streams-per-tab", _) => case?.streams_per_tab as f64,
        ("--profiles", _) => case?.profiles as f64,
        ("--hosts", _) => case?.hosts as f64,
        ("--ws-per-tab", _) => case?.ws_per_tab as f64,
        ("--h1-per-host", _) => limit?.h1_per_host as f64,
        ("--h2-default-streams", _) => f64::from(limit?.h2_default_streams),
        _ => return None,
    })
}

/// Every duration a run derives from its settings is finite and can be
/// added to now: what `Duration::from_secs_f64` or `Instant + Duration`
/// would otherwise panic on.
fn derived_durations(m: &Measure, now: Instant, args: &[String]) -> Result<(), TestCaseError> {
    let later = |d: Duration| now.checked_add(d).is_some();
    for s in &m.scenarios {
        for &wire in &s.wires {
            let spec = WireSpec::for_scenario(s, wire, Duration::from_secs(1))
                .map_err(|e| TestCaseError::fail(format!("{args:?}: {e}")))?;
            prop_assert!(spec.validate().is_ok(), "{:?}", args);
            let deadline = spec.ramp_time().saturating_add(spec.connect_timeout);
            prop_assert!(later(deadline) && later(spec.hold), "{:?}", args);
            prop_assert!(later(spec.ramp_offset(s.connections)), "{:?}", args);
        }
    }
    for extra in &m.extras {
        prop_assert!(extra.validate().is_ok(), "{:?}", args);
        match extra {
            Extra::Chat(c) => {
                let per_answer = c.answer_time().checked_add(Duration::from_secs(10));
                let all = per_answer.and_then(|d| d.checked_mul(u32::try_from(c.questions).ok()?));
                prop_assert!(all.is_some_and(later), "{:?}", args);
            }
            Extra::Echo(e) => {
                prop_assert!(later(Duration::from_secs_f64(e.duration_s)), "{:?}", args)
            }
            Extra::Faults(f) => {
                prop_assert!(f.outage() <= Duration::from_secs(60), "{:?}", args);
                for s in [f.duration_s, f.drop_every_s, f.drain_timeout_s] {
                    prop_assert!(later(Duration::from_secs_f64(s)), "{:?}", args);
                }
                let retry = Duration::from_millis(f.retry_ms);
                prop_assert!(retry.checked_mul(3).is_some(), "{:?}", args);
            }
        }
    }
    for l in &m.limits {
        prop_assert!(l.validate().is_ok(), "{:?}", args);
    }
    Ok(())
}

#[test]
fn every_number_flag_survives_edge_values() {
    for &(fixed, flag, kind) in FLAGS {
        for value in EDGES {
            if let Err(e) = check(fixed, flag, kind, value) {
                panic!("{fixed:?} {flag}={value}: {e}");
            }
        }
    }
}

/// Anything a user might type for a number: numbers of every size and
/// shape, with units, and junk.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<f64>().prop_map(|v| v.to_string()),
        any::<f64>().prop_map(|v| format!("{v:e}")),
        any::<u64>().prop_map(|v| v.to_string()),
        any::<i64>().prop_map(|v| v.to_string()),
        (0u32..100_000).prop_map(|v| v.to_string()),
        (0.0f64..2_000_000.0).prop_map(|v| v.to_string()),
        (-400i32..400).prop_map(|e| format!("1e{e}")),
        (
            any::<u32>(),
            prop::sample::select(vec!["ns", "ms", "s", "m", "h", "days", "%"])
        )
            .prop_map(|(v, unit)| format!("{v}{unit}")),
        "[0-9eE.,+%a-z-]{0,12}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    #[test]
    fn any_value_of_any_number_flag_is_refused_or_taken_as_typed(
        which in 0..FLAGS.len(),
        v in value(),
    ) {
        let (fixed, flag, kind) = FLAGS[which];
        check(fixed, flag, kind, &v)?;
    }
}

/// Runs the built binary (it refuses before starting anything).
fn loadgen(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .expect("the loadgen binary runs")
}

#[test]
fn the_binary_refuses_what_used_to_panic_with_status_2() {
    for (args, flag) in [
        (&["run", "--ramp", "1e-300"][..], "--ramp"),
        (&["chat", "--token-rate", "1e-300"][..], "--token-rate"),
    ] {
        let out = loadgen(args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(
            stderr.contains(flag) && stderr.contains("at least 0.01"),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn a_scenario_file_out_of_range_is_refused_naming_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.toml");
    std::fs::write(
        &path,
        "[[scenario]]\nname = \"tiny-ramp\"\nconnections = 10\nramp_per_s = 1e-300\n",
    )
    .unwrap();
    let out = loadgen(&["run", "--scenario", path.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("tiny-ramp")
            && stderr.contains("ramp_per_s")
            && stderr.contains("at least"),
        "{stderr}"
    );
}
