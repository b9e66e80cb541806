//! `loadgen`: parse the CLI, run, print the summary, write result.json.

#![forbid(unsafe_code)]

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use loadgen::cli::{default_out_dir, CompareArgs, Invocation, Measure, MergeArgs, ReportArgs};
use loadgen::monitor::{Monitor, Style};
use loadgen::report::ReportOptions;
use loadgen::run::run_scenarios;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    let stderr_is_terminal = std::io::stderr().is_terminal();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                // actix warns for every HTTP/2 stream a client resets, which
                // the browser model does on purpose when it closes streams.
                "warn,actix_http::h2::dispatcher=error".into()
            }),
        )
        .with_writer(std::io::stderr)
        // Colour codes only where a person reads them, not in a log file.
        .with_ansi(stderr_is_terminal)
        .init();
    server::tls::install_crypto_provider();
    // Usage errors exit with status 2 (help and version with 0), before
    // anything runs.
    let invocation = loadgen::cli::parse(std::env::args_os()).unwrap_or_else(|e| e.exit());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(invocation)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(invocation: Invocation) -> anyhow::Result<ExitCode> {
    match invocation {
        Invocation::Measure(m) => measure(m).await,
        Invocation::Serve { config, edge } => {
            // The ready line is what the parent process waits for, on stdout
            // (after the edge's URL, when there is one).
            loadgen::run::serve(*config, edge, |line| println!("{line}")).await?;
            Ok(ExitCode::SUCCESS)
        }
        Invocation::Report(args) => report_command(&args),
        Invocation::Schema => {
            let schema = loadgen::result::RunResult::schema();
            let text = serde_json::to_string_pretty(&schema).context("printing the schema")?;
            println!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Invocation::Compare(args) => compare_command(&args),
        Invocation::Merge(args) => merge_command(&args),
        Invocation::Doctor(spec) => doctor_command(&spec).await,
        Invocation::Worker => {
            loadgen::run::serve_worker().await?;
            Ok(ExitCode::SUCCESS)
        }
        Invocation::ServeBare(config) => {
            // The ready line is what the parent process waits for, on stdout.
            loadgen::run::serve_bare(config, |ready| println!("{ready}")).await?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// One line per check; exit 1 when any check failed.
async fn doctor_command(spec: &loadgen::doctor::DoctorSpec) -> anyhow::Result<ExitCode> {
    println!("doctor: {} (within {:?})", spec.url, spec.max_wait);
    if matches!(spec.trust, loadgen::client::Trust::Insecure)
        && (spec.url.starts_with("https:") || spec.url.starts_with("wss:"))
    {
        println!("note: the TLS certificate is not verified (give --ca-cert FILE to verify it)");
    }
    let diagnosis = loadgen::doctor::diagnose(spec)
        .await
        .with_context(|| format!("checking {}", spec.url))?;
    for check in &diagnosis.checks {
        println!("{check}");
    }
    let worst = diagnosis.worst();
    println!("doctor: {worst}");
    Ok(if worst == loadgen::doctor::Verdict::Fail {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

async fn measure(m: Measure) -> anyhow::Result<ExitCode> {
    let server = m.server.options()?;
    let Measure {
        name,
        scenarios,
        extras,
        limits,
        out,
        quiet,
        skipped,
        ..
    } = m;
    if scenarios.iter().any(|s| s.link.is_some()) {
        loadgen::run::link_support()?;
    }
    for why in &skipped {
        eprintln!("skipped: {why}");
    }
    let limit = server::nofile::raise_open_files_limit();
    let needed = scenarios
        .iter()
        .map(|s| s.connections as u64)
        .max()
        .unwrap_or(0)
        + 64;
    if limit < needed {
        eprintln!(
            "warning: {}",
            server::nofile::too_low_message(limit, needed)
        );
    }
    let out = out.unwrap_or_else(|| default_out_dir(&name));
    let cancel = CancellationToken::new();
    let on_ctrl_c = cancel.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!(
                "interrupted: stopping and writing what was measured (Ctrl-C again to quit now)"
            );
            on_ctrl_c.cancel();
        }
        if tokio::signal::ctrl_c().await.is_ok() {
            // Exiting skips destructors: remove the emulated link's
            // namespaces and certificate files first (child processes die
            // with their pipes).
            if let Err(e) = netlab::remove_own_namespaces() {
                eprintln!("warning: removing this run's network namespaces: {e}");
            }
            loadgen::run::remove_link_files();
            eprintln!("interrupted twice: quitting without writing a result");
            std::process::exit(130);
        }
    });
    let monitor = Monitor::new(Style::detect(quiet));
    let mut result = run_scenarios(&name, &scenarios, &server, &monitor, cancel.clone()).await;
    result.skipped = skipped;
    loadgen::scenarios::run_into(&extras, &server, &mut result, &cancel).await;
    if !limits.is_empty() {
        loadgen::limit::run_into(&limits, &server, &mut result, &cancel).await;
    }
    let path = result
        .save(&out)
        .with_context(|| format!("writing the result into {}", out.display()))?;
    write_reports(&result, &out, &ReportOptions::default());
    if !quiet {
        println!("{}", loadgen::report::text::feed_summary(&result));
        print!("{}", loadgen::report::text::extras_summary(&result));
        print!("{}", loadgen::report::text::limit_summary(&result));
        print!("{}", loadgen::report::network_summary(&result));
    }
    eprintln!("result: {}", path.display());
    Ok(if result.complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Writes report.md and report.html beside result.json. A failure here
/// loses nothing (result.json is written), so it is a warning.
fn write_reports(result: &loadgen::result::RunResult, dir: &Path, opts: &ReportOptions) {
    match loadgen::report::write_reports(result, dir, opts) {
        Ok(paths) => {
            for p in paths {
                eprintln!("report: {}", p.display());
            }
        }
        Err(e) => eprintln!(
            "warning: {e}; `loadgen report {}` tries again",
            dir.display()
        ),
    }
}

/// Loads a run's result.json, naming the path on failure.
fn load_result(path: &Path) -> anyhow::Result<loadgen::result::RunResult> {
    let file = loadgen::report::result_file(path);
    Ok(loadgen::result::RunResult::load(&file)?)
}

/// `loadgen report DIR`
fn report_command(args: &ReportArgs) -> anyhow::Result<ExitCode> {
    if args.index {
        let paths = loadgen::report::write_index(&args.dir)
            .with_context(|| format!("indexing the runs in {}", args.dir.display()))?;
        for p in paths {
            println!("{}", p.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let result = load_result(&args.dir)?;
    let dir = loadgen::report::result_file(&args.dir)
        .parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf);
    let paths = loadgen::report::write_reports(
        &result,
        &dir,
        &ReportOptions {
            baseline: args.baseline,
        },
    )?;
    for p in paths {
        println!("{}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `loadgen compare A B`: prints the table, writes compare.md; exit 3 on a
/// regression (or when nothing could be compared) when asked.
fn compare_command(args: &CompareArgs) -> anyhow::Result<ExitCode> {
    let a = load_result(&args.a)?;
    let b = load_result(&args.b)?;
    let c = loadgen::compare::compare(&a, &b, args.threshold);
    let (a_label, b_label) = (args.a.display().to_string(), args.b.display().to_string());
    let md = loadgen::compare::markdown(&c, &a_label, &b_label);
    print!("{md}");
    let dir = match &args.out {
        Some(d) => d.clone(),
        None => loadgen::report::result_file(&args.b)
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = dir.join("compare.md");
    std::fs::write(&path, &md).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("comparison: {}", path.display());
    Ok(if args.fail_on_regression && !c.passes() {
        ExitCode::from(3)
    } else {
        ExitCode::SUCCESS
    })
}

/// `loadgen merge DIR... --out DIR`: writes the merged result and its reports.
fn merge_command(args: &MergeArgs) -> anyhow::Result<ExitCode> {
    let mut sources = Vec::new();
    for dir in &args.dirs {
        sources.push((dir.display().to_string(), load_result(dir)?));
    }
    let merged = loadgen::merge::merge(&sources)?;
    let path = merged
        .save(&args.out)
        .with_context(|| format!("writing the merged result into {}", args.out.display()))?;
    println!("{}", path.display());
    write_reports(
        &merged,
        &args.out,
        &ReportOptions {
            baseline: args.baseline,
        },
    );
    Ok(ExitCode::SUCCESS)
}
