//! `loadgen`: parse the CLI, run, print the summary, write result.json.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use loadgen::cli::{default_out_dir, Cli, Command};
use loadgen::monitor::{Monitor, Style};
use loadgen::runner::run_scenarios;
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    server::tls::install_crypto_provider();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    // Scenarios beyond the feed (chat, echo, faults), run after the feed ones.
    let mut extras = Vec::new();
    let (name, scenarios, server, out, quiet) = match cli.command {
        Command::Chat(args) => {
            extras.push(args.extra());
            let c = args.common;
            (
                "chat".into(),
                Vec::new(),
                c.server.options()?,
                c.out,
                c.quiet,
            )
        }
        Command::Echo(args) => {
            extras.push(args.extra());
            let c = args.common;
            (
                "echo".into(),
                Vec::new(),
                c.server.options()?,
                c.out,
                c.quiet,
            )
        }
        Command::Faults(args) => {
            extras.push(args.extra());
            let c = args.common;
            (
                "faults".into(),
                Vec::new(),
                c.server.options()?,
                c.out,
                c.quiet,
            )
        }
        Command::Serve(args) => {
            loadgen::embedded::serve(args.config).await?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Worker => {
            loadgen::workers::serve_worker().await?;
            return Ok(ExitCode::SUCCESS);
        }
        Command::Run(args) => {
            let scenarios = args.scenarios()?;
            let name = args.name.clone().unwrap_or_else(|| {
                if scenarios.len() == 1 {
                    scenarios[0].name.clone()
                } else {
                    "run".into()
                }
            });
            (
                name,
                scenarios,
                args.server.options()?,
                args.out,
                args.quiet,
            )
        }
        Command::Suite(args) => (
            {
                if !args.feed_only {
                    extras = loadgen::scenario::beyond_feed_suite(args.duration.as_secs_f64());
                }
                "suite".to_string()
            },
            loadgen::scenario::standard_suite(args.duration.as_secs_f64()),
            args.server.options()?,
            args.out,
            args.quiet,
        ),
    };
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
            eprintln!("interrupted: stopping and writing what was measured");
            on_ctrl_c.cancel();
        }
    });
    let monitor = Monitor::new(Style::detect(quiet));
    let mut result = run_scenarios(&name, &scenarios, &server, &monitor, cancel.clone()).await;
    loadgen::scenarios::run_into(&extras, &server, &mut result, &cancel).await;
    let path = result
        .save(&out)
        .with_context(|| format!("writing the result into {}", out.display()))?;
    if !quiet {
        println!("{}", loadgen::printer::summary(&result));
        print!("{}", loadgen::scenarios::summary(&result));
    }
    eprintln!("result: {}", path.display());
    Ok(if result.complete {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
