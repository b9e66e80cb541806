//! The server a scenario runs against: the embedded one (with the settings
//! the scenario needs) or an external one, as for the feed scenarios.

use std::time::Duration;

use anyhow::Context as _;

use crate::embedded::{child_flags, EmbeddedServer};
use crate::result::ServerSetup;
use crate::runner::{RunOptions, ServerChoice};
use crate::target::Target;

/// A started (or found) server and how to reach it.
pub struct ScenarioServer {
    embedded: Option<EmbeddedServer>,
    pub target: Target,
    pub setup: ServerSetup,
}

impl ScenarioServer {
    /// Starts the embedded server with `rate_hz` and extra `serve` flags
    /// (`--replay 64`...), or checks the external target.
    pub async fn start(
        opts: &RunOptions,
        rate_hz: f64,
        extra: &[(&str, String)],
    ) -> anyhow::Result<ScenarioServer> {
        let embedded = match &opts.server {
            ServerChoice::InProcess => {
                let mut flags = vec!["server".to_string()];
                flags.extend(child_flags(rate_hz, 0, opts.workers));
                for (k, v) in extra {
                    flags.extend([k.to_string(), v.clone()]);
                }
                let mut c = <server::ServerConfig as clap::Parser>::try_parse_from(&flags)
                    .context("building the embedded server's settings")?;
                c.shutdown_timeout = Duration::from_secs(3);
                Some(EmbeddedServer::in_process(c)?)
            }
            ServerChoice::Child { exe } => {
                let mut flags = child_flags(rate_hz, 0, opts.workers);
                for (k, v) in extra {
                    flags.extend([k.to_string(), v.clone()]);
                }
                Some(EmbeddedServer::child(exe.clone(), flags).await?)
            }
            ServerChoice::External { .. } => None,
        };
        let (target, mode) = match (&embedded, &opts.server) {
            (Some(e), _) => {
                let r = e.ready();
                (
                    Target::embedded(r.http_addr, r.https_addr, r.cert_path)?,
                    e.mode(),
                )
            }
            (
                None,
                ServerChoice::External {
                    http_url,
                    https_url,
                    trust,
                    allow_remote,
                },
            ) => (
                Target::external(http_url, https_url.as_deref(), trust.clone(), *allow_remote)
                    .await
                    .context("checking the target")?,
                "external",
            ),
            (None, _) => unreachable!("only an external choice has no embedded server"),
        };
        let setup = ServerSetup {
            mode: mode.to_string(),
            http_url: target.http_url.clone(),
            https_url: target.https_url.clone(),
            rate_hz,
            payload_bytes: 0,
            workers: opts.workers,
        };
        Ok(ScenarioServer {
            embedded,
            target,
            setup,
        })
    }

    pub async fn stop(self) {
        if let Some(e) = self.embedded {
            e.stop().await;
        }
    }
}
