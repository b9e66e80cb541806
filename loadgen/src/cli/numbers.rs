//! Number flags: parsed, then checked against the same ranges as scenario
//! files (`result::Bounds`). Out of range is a usage error naming the flag
//! (clap adds it) and the range, never a silently clamped value, and never
//! a value that later panics (`1e-300` connections per second once did).

use std::str::FromStr;
use std::time::Duration;

use crate::result::{check_ramp, Bounds, Figure, DAY_S};

/// A parser of a number within `bounds`, for `value_parser = ...`.
pub fn ranged<T>(bounds: Bounds<T>) -> impl Fn(&str) -> Result<T, String> + Clone + Send + Sync
where
    T: FromStr + Figure + Send + Sync + 'static,
{
    move |s: &str| {
        let v: T = s
            .trim()
            .parse()
            .map_err(|_| format!("`{s}` is not a number {bounds}"))?;
        bounds.check(v)
    }
}

/// A parser of a duration (`10`, `2.5`, `500ms`, `1h`) within `bounds` seconds.
pub fn seconds(
    bounds: Bounds<f64>,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync {
    move |s: &str| {
        let d = server::config::parse_duration(s.trim())
            .map_err(|e| format!("{e}; it must be a duration {bounds}"))?;
        bounds.check(d.as_secs_f64())?;
        Ok(d)
    }
}

/// A parser of a duration within `bounds` milliseconds.
pub fn millis(
    bounds: Bounds<u64>,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync {
    move |s: &str| {
        let d = server::config::parse_duration(s.trim())
            .map_err(|e| format!("{e}; it must be a duration {bounds}"))?;
        bounds.check(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))?;
        Ok(d)
    }
}

/// How fast connections open: `500` (per second) or `5s` (spread over that long).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Ramp {
    PerSecond(f64),
    Over(Duration),
}

impl std::fmt::Display for Ramp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ramp::PerSecond(r) => write!(f, "{}", r.show()),
            Ramp::Over(d) => write!(f, "{}", humantime::format_duration(*d)),
        }
    }
}

impl Ramp {
    pub fn per_second(self, connections: usize) -> f64 {
        match self {
            Ramp::PerSecond(r) => r,
            Ramp::Over(d) if d.is_zero() => 0.0,
            Ramp::Over(d) => connections as f64 / d.as_secs_f64(),
        }
    }
}

/// Spreading connections over at most a day.
const RAMP_OVER: Bounds<f64> = Bounds::new(0.0, DAY_S, " s");

/// `--ramp`: 0 (all at once), connections per second, or a duration.
pub fn parse_ramp(s: &str) -> Result<Ramp, String> {
    let s = s.trim();
    if let Ok(r) = s.parse::<f64>() {
        return check_ramp(r).map(Ramp::PerSecond);
    }
    let d = humantime::parse_duration(s)
        .map_err(|e| format!("`{s}` is neither connections per second nor a duration: {e}"))?;
    RAMP_OVER
        .check(d.as_secs_f64())
        .map_err(|e| format!("a ramp spread over a duration {e}"))?;
    Ok(Ramp::Over(d))
}

/// Threshold percentages (`10`, `10%`).
const PERCENT: Bounds<f64> = Bounds::new(0.0, 10_000.0, " %");

/// `10`, `10%` or `2.5 %` as a fraction (0.1, 0.025).
pub fn parse_percent(s: &str) -> Result<f64, String> {
    let digits = s.trim().trim_end_matches('%').trim();
    let v: f64 = digits
        .parse()
        .map_err(|_| format!("`{s}`: a threshold is a percentage {PERCENT}, e.g. 10 or 10%"))?;
    PERCENT
        .check(v)
        .map(|v| v / 100.0)
        .map_err(|e| format!("a threshold {e}"))
}

/// Worker threads of the embedded server.
pub const SERVER_WORKERS: Bounds<usize> = Bounds::new(1, 1_024, "");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ramps_parse() {
        assert_eq!(parse_ramp("500"), Ok(Ramp::PerSecond(500.0)));
        assert_eq!(parse_ramp("0"), Ok(Ramp::PerSecond(0.0)));
        assert_eq!(parse_ramp("5s").unwrap().per_second(1000), 200.0);
        assert!(parse_ramp("-1").is_err());
        assert!(parse_ramp("soon").is_err());
        let e = parse_ramp("1e-300").unwrap_err();
        assert!(e.contains("at least 0.01") && e.contains("1e-300"), "{e}");
        assert!(parse_ramp("NaN").is_err());
        assert!(parse_ramp("2days").is_err());
    }

    #[test]
    fn numbers_outside_their_range_say_which_range() {
        let p = ranged(Bounds::new(1usize, 10, ""));
        assert_eq!(p("3"), Ok(3));
        assert_eq!(
            p("0").unwrap_err(),
            "must be at least 1 and at most 10 (got 0)"
        );
        assert!(p("-1").unwrap_err().contains("at least 1 and at most 10"));
        let d = seconds(Bounds::new(0.01, 3_600.0, " s"));
        assert_eq!(d("2s"), Ok(Duration::from_secs(2)));
        assert!(d("1e-300").is_err());
        assert!(d("1e300").is_err());
        assert!(d("2h").is_err());
        assert_eq!(parse_percent("10%"), Ok(0.1));
        assert!(parse_percent("1e9").is_err());
        assert!(parse_percent("-3").is_err());
    }
}
