//! One check's outcome: PASS, WARN or FAIL, what was seen, and the fix;
//! and the time each check may take out of the run's bound.

use std::fmt;
use std::time::Duration;

use tokio::time::Instant;

/// A check's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    Pass,
    Warn,
    Fail,
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
        })
    }
}

/// One check: what was seen, and what to do about it.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub name: &'static str,
    pub verdict: Verdict,
    pub seen: String,
    /// The fix, for a WARN or a FAIL.
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(name: &'static str, seen: impl Into<String>) -> Check {
        Check {
            name,
            verdict: Verdict::Pass,
            seen: seen.into(),
            fix: None,
        }
    }

    pub fn warn(name: &'static str, seen: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            verdict: Verdict::Warn,
            seen: seen.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(name: &'static str, seen: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            verdict: Verdict::Fail,
            seen: seen.into(),
            fix: Some(fix.into()),
        }
    }
}

impl fmt::Display for Check {
    /// `PASS  content type        text/event-stream`, then `      fix: …`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}  {:<22} {}", self.verdict, self.name, self.seen)?;
        if let Some(fix) = &self.fix {
            write!(f, "\n      fix: {fix}")?;
        }
        Ok(())
    }
}

/// Why the doctor could not start (a bad URL, a refused address).
#[derive(Debug, thiserror::Error)]
pub enum DoctorError {
    #[error(transparent)]
    Target(#[from] crate::client::TargetError),
    #[error(transparent)]
    Tls(#[from] crate::client::TlsConfigError),
    #[error(transparent)]
    Endpoint(#[from] crate::client::EndpointError),
    /// A `--header`, `--stamp-field` or the like that cannot be used.
    #[error("{0}")]
    Settings(String),
}

/// The time left before the run's deadline, at most `cap`.
pub(crate) fn budget(deadline: Instant, cap: Duration) -> Duration {
    deadline.saturating_duration_since(Instant::now()).min(cap)
}
