//! The live progress view: connected / target, events/s, p99 so far,
//! errors. A bar on a terminal, a plain line every few seconds otherwise,
//! nothing with `--quiet`.

use std::io::IsTerminal as _;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::report::us;
use crate::result::{Scenario, ServerSetup, WireResult};
use crate::run::{Live, Observer};
use crate::wire::Wire;

/// How the view is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    Bar,
    Lines,
    Quiet,
}

impl Style {
    pub fn detect(quiet: bool) -> Style {
        if quiet {
            Style::Quiet
        } else if std::io::stderr().is_terminal() {
            Style::Bar
        } else {
            Style::Lines
        }
    }
}

/// Draws while a wire runs; stops drawing when the wire finishes.
pub struct Monitor {
    style: Style,
    current: Mutex<Option<CancellationToken>>,
}

impl Monitor {
    pub fn new(style: Style) -> Self {
        Monitor {
            style,
            current: Mutex::new(None),
        }
    }

    fn say(&self, msg: &str) {
        if self.style != Style::Quiet {
            eprintln!("{msg}");
        }
    }
}

impl Observer for Monitor {
    fn scenario_started(&self, scenario: &Scenario, server: &ServerSetup) {
        self.say(&format!(
            "scenario {}: {} connections per wire, server {} ({}, {} Hz)",
            scenario.name, scenario.connections, server.http_url, server.mode, server.rate_hz
        ));
    }

    fn wire_started(&self, scenario: &Scenario, wire: Wire, live: Arc<Live>) {
        if self.style == Style::Quiet {
            return;
        }
        let stop = CancellationToken::new();
        if let Ok(mut cur) = self.current.lock() {
            if let Some(old) = cur.replace(stop.clone()) {
                old.cancel();
            }
        }
        let style = self.style;
        let label = format!("{}/{wire}", scenario.name);
        let target = scenario.connections as u64;
        tokio::spawn(async move {
            let bar = match style {
                Style::Bar => {
                    let b = ProgressBar::new(target);
                    b.set_draw_target(ProgressDrawTarget::stderr_with_hz(4));
                    b.set_style(
                        ProgressStyle::with_template("{prefix:>16} [{bar:30}] {pos}/{len} {msg}")
                            .expect("a valid template")
                            .progress_chars("=> "),
                    );
                    b.set_prefix(label.clone());
                    Some(b)
                }
                _ => None,
            };
            let every = if bar.is_some() {
                Duration::from_millis(250)
            } else {
                Duration::from_secs(5)
            };
            let (mut last_events, mut last_at) = (0u64, Instant::now());
            loop {
                tokio::select! {
                    _ = stop.cancelled() => break,
                    _ = tokio::time::sleep(every) => {}
                }
                let s = live.snapshot();
                let now = Instant::now();
                let rate = (s.events.saturating_sub(last_events)) as f64
                    / now.duration_since(last_at).as_secs_f64().max(1e-3);
                (last_events, last_at) = (s.events, now);
                let msg = format!(
                    "{rate:.0} events/s, p99 {}, {} errors",
                    us(s.p99_us),
                    s.errors
                );
                match &bar {
                    Some(b) => {
                        b.set_position(s.connected as u64);
                        b.set_message(msg);
                    }
                    None => eprintln!("{label}: {}/{} connected, {msg}", s.connected, s.target),
                }
            }
            if let Some(b) = bar {
                b.finish_and_clear();
            }
        });
    }

    fn wire_finished(&self, r: &WireResult) {
        if let Ok(mut cur) = self.current.lock() {
            if let Some(old) = cur.take() {
                old.cancel();
            }
        }
        self.say(&format!(
            "  {}: {}/{} connected, {:.0} events/s, p99 {}, lost {}, duplicates {}",
            r.wire,
            r.opened,
            r.connections,
            r.events_per_s,
            if r.measured.latency {
                us(r.latency_us.p99)
            } else {
                crate::report::text::NOT_MEASURED.to_string()
            },
            crate::report::text::lost_shown(r),
            r.duplicates
        ));
    }
}
