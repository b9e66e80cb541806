//! What the link does to packets: [`LinkSpec`], parsed from the `--link`
//! text (`"delay=25ms,jitter=5ms,loss=1%,rate=10mbit"`) or a scenario's
//! `link` table, and [`Outage`] (`"2s@5s"`).
//!
//! One grammar serves the command line and TOML, so a scenario file and a
//! command line that say the same thing produce the same link. Values out of
//! range are rejected, never clamped: a run that silently used another link
//! than the one asked for would report numbers for the wrong network.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The longest one-way delay accepted (RTT 10 s): beyond any real network.
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// The slowest rate accepted: below it a full-size packet takes over a second.
pub const MIN_RATE_BPS: u64 = 8_000;
/// The fastest rate accepted: above what a userspace forwarder can move.
pub const MAX_RATE_BPS: u64 = 10_000_000_000;
/// The queue limit when none is given (see [`LinkSpec::queue`]).
pub const DEFAULT_QUEUE: Duration = Duration::from_millis(200);
/// Bounds of the queue limit.
pub const MIN_QUEUE: Duration = Duration::from_millis(1);
pub const MAX_QUEUE: Duration = Duration::from_secs(60);
/// The latest an outage may start, and the longest it may last.
pub const MAX_OUTAGE_START: Duration = Duration::from_secs(24 * 3600);
pub const MAX_OUTAGE: Duration = Duration::from_secs(3600);

/// The link between the client and the server namespace. Every setting
/// applies to each direction on its own (a packet and its reply each get
/// `delay`, so RTT = 2 × `delay`).
///
/// Build one by parsing ([`str::parse`]) or field by field; either way
/// [`LinkSpec::validate`] is what the lab checks before using it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "LinkTable", into = "LinkTable")]
pub struct LinkSpec {
    /// One-way delay added to every packet.
    pub delay: Duration,
    /// Each packet's delay is drawn uniformly from `delay ± jitter`.
    /// Unless `reorder` is set a packet never leaves before the one queued
    /// ahead of it, as on a real single-path link; packets closer together
    /// than 2 × jitter are then held back behind their predecessor, so
    /// dense traffic sees delays nearer `delay + jitter` than the mean
    /// (netem behaves the same with a rate set).
    pub jitter: Duration,
    /// Per-packet loss, in percent (`1.0` = 1 %), drawn independently.
    pub loss_percent: f64,
    /// Bottleneck rate in bits per second: each packet takes its
    /// serialization time, packets wait in a FIFO queue behind each other.
    pub rate_bps: Option<u64>,
    /// The longest a packet may wait for the bottleneck (like tbf's
    /// `latency`): a packet that would wait longer is tail-dropped and
    /// counted. Meaningful only with a `rate`.
    pub queue: Duration,
    /// Let jitter reorder packets (off by default).
    pub reorder: bool,
    /// Windows in which every packet is dropped, relative to the moment the
    /// caller starts the schedule ([`crate::LinkControl::start_outages`]).
    pub outages: Vec<Outage>,
}

impl Default for LinkSpec {
    fn default() -> Self {
        Self {
            delay: Duration::ZERO,
            jitter: Duration::ZERO,
            loss_percent: 0.0,
            rate_bps: None,
            queue: DEFAULT_QUEUE,
            reorder: false,
            outages: Vec::new(),
        }
    }
}

/// Why a link description was refused; `part` is the piece at fault, as the
/// user wrote it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("link setting `{part}`: {reason}")]
pub struct LinkSpecError {
    pub part: String,
    pub reason: String,
}

impl LinkSpecError {
    fn new(part: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            part: part.into(),
            reason: reason.into(),
        }
    }
}

/// The link drops every packet for `duration`, starting `start` after the
/// schedule begins. Written `"<duration>@<start>"`, e.g. `"2s@5s"`, also in
/// serde forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Outage {
    pub start: Duration,
    pub duration: Duration,
}

impl Outage {
    /// Whether `offset` (time since the schedule began) falls in this outage.
    pub fn contains(&self, offset: Duration) -> bool {
        offset >= self.start && offset - self.start < self.duration
    }

    /// When the link comes back, relative to the schedule's start.
    pub fn end(&self) -> Duration {
        self.start + self.duration
    }
}

impl FromStr for Outage {
    type Err = LinkSpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let (duration, start) = text.split_once('@').ok_or_else(|| {
            LinkSpecError::new(
                text,
                "an outage is `<duration>@<start>`, e.g. `2s@5s` (2 s of no link, 5 s in)",
            )
        })?;
        let duration = parse_duration(text, duration)?;
        let start = parse_duration(text, start)?;
        let outage = Outage { start, duration };
        outage.check(text)?;
        Ok(outage)
    }
}

impl TryFrom<String> for Outage {
    type Error = LinkSpecError;

    fn try_from(text: String) -> Result<Self, Self::Error> {
        text.parse()
    }
}

impl From<Outage> for String {
    fn from(outage: Outage) -> Self {
        outage.to_string()
    }
}

impl Outage {
    fn check(&self, part: &str) -> Result<(), LinkSpecError> {
        if self.duration.is_zero() {
            return Err(LinkSpecError::new(
                part,
                "an outage must last longer than 0",
            ));
        }
        if self.duration > MAX_OUTAGE {
            return Err(LinkSpecError::new(
                part,
                format!("an outage may last at most {}", fmt_duration(MAX_OUTAGE)),
            ));
        }
        if self.start > MAX_OUTAGE_START {
            return Err(LinkSpecError::new(
                part,
                format!(
                    "an outage must start within {}",
                    fmt_duration(MAX_OUTAGE_START)
                ),
            ));
        }
        Ok(())
    }
}

impl fmt::Display for Outage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}@{}",
            fmt_duration(self.duration),
            fmt_duration(self.start)
        )
    }
}

impl LinkSpec {
    /// Checks every range; the lab refuses a spec that fails this.
    pub fn validate(&self) -> Result<(), LinkSpecError> {
        let delay = fmt_duration(self.delay);
        if self.delay > MAX_DELAY {
            return Err(LinkSpecError::new(
                format!("delay={delay}"),
                format!(
                    "the one-way delay may be at most {}",
                    fmt_duration(MAX_DELAY)
                ),
            ));
        }
        if self.jitter > self.delay {
            return Err(LinkSpecError::new(
                format!("jitter={}", fmt_duration(self.jitter)),
                format!(
                    "jitter may not exceed the delay ({delay}): a packet cannot leave before it arrives"
                ),
            ));
        }
        if !(self.loss_percent.is_finite() && (0.0..100.0).contains(&self.loss_percent)) {
            return Err(LinkSpecError::new(
                format!("loss={}%", self.loss_percent),
                "loss is a percentage from 0% to below 100% (for no link at all, use an outage)",
            ));
        }
        if let Some(rate) = self.rate_bps {
            if !(MIN_RATE_BPS..=MAX_RATE_BPS).contains(&rate) {
                return Err(LinkSpecError::new(
                    format!("rate={}", fmt_rate(rate)),
                    format!(
                        "the rate must lie between {} and {}",
                        fmt_rate(MIN_RATE_BPS),
                        fmt_rate(MAX_RATE_BPS)
                    ),
                ));
            }
        }
        if !(MIN_QUEUE..=MAX_QUEUE).contains(&self.queue) {
            return Err(LinkSpecError::new(
                format!("queue={}", fmt_duration(self.queue)),
                format!(
                    "the queue limit must lie between {} and {}",
                    fmt_duration(MIN_QUEUE),
                    fmt_duration(MAX_QUEUE)
                ),
            ));
        }
        for outage in &self.outages {
            outage.check(&format!("outage={outage}"))?;
        }
        Ok(())
    }

    /// Loss as a fraction of packets (0.01 = 1 %).
    pub fn loss_fraction(&self) -> f64 {
        self.loss_percent / 100.0
    }

    /// The round-trip time the link adds (twice the one-way delay).
    pub fn rtt(&self) -> Duration {
        self.delay * 2
    }

    /// Whether this link changes anything at all.
    pub fn is_transparent(&self) -> bool {
        self.delay.is_zero()
            && self.loss_percent == 0.0
            && self.rate_bps.is_none()
            && self.outages.is_empty()
    }
}

/// Parses `"delay=25ms,jitter=5ms,loss=1%,rate=10mbit,queue=200ms,reorder=yes,outage=2s@5s"`.
/// Every part is optional (the empty text is a transparent link); `outage`
/// may repeat, the others may not.
impl FromStr for LinkSpec {
    type Err = LinkSpecError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let mut spec = LinkSpec::default();
        let mut seen: Vec<&str> = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = part.split_once('=').ok_or_else(|| {
                LinkSpecError::new(part, "expected `name=value`, e.g. `delay=25ms`")
            })?;
            let (key, value) = (key.trim(), value.trim());
            if key != "outage" {
                if seen.contains(&key) {
                    return Err(LinkSpecError::new(part, format!("`{key}` is given twice")));
                }
                seen.push(key);
            }
            match key {
                "delay" => spec.delay = parse_duration(part, value)?,
                "jitter" => spec.jitter = parse_duration(part, value)?,
                "loss" => spec.loss_percent = parse_percent(part, value)?,
                "rate" => spec.rate_bps = Some(parse_rate(part, value)?),
                "queue" => spec.queue = parse_duration(part, value)?,
                "reorder" => spec.reorder = parse_switch(part, value)?,
                "outage" => spec.outages.push(value.parse().map_err(|e: LinkSpecError| {
                    LinkSpecError::new(part, e.reason)
                })?),
                _ => {
                    return Err(LinkSpecError::new(
                        part,
                        format!(
                            "unknown setting `{key}` (known: delay, jitter, loss, rate, queue, reorder, outage)"
                        ),
                    ))
                }
            }
        }
        spec.validate()?;
        Ok(spec)
    }
}

/// The canonical text: parsing it gives back an equal spec. Settings left
/// at their default are omitted.
impl fmt::Display for LinkSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        let table = LinkTable::from(self.clone());
        let named = [
            ("delay", table.delay),
            ("jitter", table.jitter),
            ("loss", table.loss),
            ("rate", table.rate),
            ("queue", table.queue),
        ];
        for (key, value) in named {
            if let Some(value) = value {
                parts.push(format!("{key}={value}"));
            }
        }
        if self.reorder {
            parts.push("reorder=yes".to_string());
        }
        for outage in &self.outages {
            parts.push(format!("outage={outage}"));
        }
        f.write_str(&parts.join(","))
    }
}

/// The scenario TOML form: a `link` table whose fields carry the same text
/// as the `--link` parts, so one grammar serves both.
///
/// ```toml
/// [scenario.link]
/// delay = "25ms"
/// loss = "1%"
/// rate = "1.5mbit"
/// outages = ["2s@5s", "20s@30s"]
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkTable {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loss: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reorder: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outages: Vec<String>,
}

impl TryFrom<LinkTable> for LinkSpec {
    type Error = LinkSpecError;

    fn try_from(table: LinkTable) -> Result<Self, Self::Error> {
        let mut spec = LinkSpec::default();
        let field = |key: &str, value: &str| format!("{key} = \"{value}\"");
        if let Some(v) = &table.delay {
            spec.delay = parse_duration(&field("delay", v), v)?;
        }
        if let Some(v) = &table.jitter {
            spec.jitter = parse_duration(&field("jitter", v), v)?;
        }
        if let Some(v) = &table.loss {
            spec.loss_percent = parse_percent(&field("loss", v), v)?;
        }
        if let Some(v) = &table.rate {
            spec.rate_bps = Some(parse_rate(&field("rate", v), v)?);
        }
        if let Some(v) = &table.queue {
            spec.queue = parse_duration(&field("queue", v), v)?;
        }
        spec.reorder = table.reorder;
        for v in &table.outages {
            let outage = v
                .parse()
                .map_err(|e: LinkSpecError| LinkSpecError::new(field("outages", v), e.reason))?;
            spec.outages.push(outage);
        }
        spec.validate()?;
        Ok(spec)
    }
}

impl From<LinkSpec> for LinkTable {
    fn from(spec: LinkSpec) -> Self {
        let some_if = |keep: bool, text: String| keep.then_some(text);
        LinkTable {
            delay: some_if(!spec.delay.is_zero(), fmt_duration(spec.delay)),
            jitter: some_if(!spec.jitter.is_zero(), fmt_duration(spec.jitter)),
            loss: some_if(spec.loss_percent != 0.0, format!("{}%", spec.loss_percent)),
            rate: spec.rate_bps.map(fmt_rate),
            queue: some_if(spec.queue != DEFAULT_QUEUE, fmt_duration(spec.queue)),
            reorder: spec.reorder,
            outages: spec.outages.iter().map(Outage::to_string).collect(),
        }
    }
}

/// A duration as humantime writes it (`25ms`, `1s 500ms`), which
/// [`humantime::parse_duration`] reads back exactly.
pub fn fmt_duration(d: Duration) -> String {
    if d.is_zero() {
        "0s".to_string()
    } else {
        humantime::format_duration(d).to_string()
    }
}

/// A rate in the largest unit that writes it exactly (`10mbit`, `1500kbit`).
pub fn fmt_rate(bps: u64) -> String {
    for (unit, scale) in [
        ("gbit", 1_000_000_000),
        ("mbit", 1_000_000),
        ("kbit", 1_000),
    ] {
        if bps >= scale && bps.is_multiple_of(scale) {
            return format!("{}{unit}", bps / scale);
        }
    }
    format!("{bps}bit")
}

fn parse_duration(part: &str, value: &str) -> Result<Duration, LinkSpecError> {
    let value = value.trim();
    humantime::parse_duration(value).map_err(|e| {
        LinkSpecError::new(
            part,
            format!("`{value}` is not a duration ({e}); write e.g. `25ms` or `1.5s`"),
        )
    })
}

fn parse_percent(part: &str, value: &str) -> Result<f64, LinkSpecError> {
    let number = value.trim().strip_suffix('%').ok_or_else(|| {
        LinkSpecError::new(
            part,
            "loss is a percentage with a `%` sign, e.g. `1%` or `0.5%`",
        )
    })?;
    let percent: f64 = number
        .trim()
        .parse()
        .map_err(|_| LinkSpecError::new(part, format!("`{number}` is not a number")))?;
    if !(percent.is_finite() && (0.0..100.0).contains(&percent)) {
        return Err(LinkSpecError::new(
            part,
            "loss is a percentage from 0% to below 100% (for no link at all, use an outage)",
        ));
    }
    Ok(percent)
}

/// Rates in tc's bit units, decimal: `bit`, `kbit`, `mbit`, `gbit`. tc's
/// `kbps`/`mbps` mean *bytes* per second, a classic source of 8× mistakes,
/// so byte units are refused with a hint instead of guessed.
fn parse_rate(part: &str, value: &str) -> Result<u64, LinkSpecError> {
    let lower = value.trim().to_ascii_lowercase();
    let split = lower
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(split);
    let scale: f64 = match unit.trim() {
        "bit" => 1.0,
        "kbit" => 1e3,
        "mbit" => 1e6,
        "gbit" => 1e9,
        "" => {
            return Err(LinkSpecError::new(
                part,
                "a rate needs a unit: bit, kbit, mbit or gbit (e.g. `10mbit`)",
            ))
        }
        other if other.ends_with("bps") || other.ends_with('b') => {
            return Err(LinkSpecError::new(
                part,
                format!("`{other}` would be bytes per second; write the rate in bits: kbit, mbit or gbit (1 MB/s = 8mbit)"),
            ))
        }
        other => {
            return Err(LinkSpecError::new(
                part,
                format!("unknown rate unit `{other}` (use bit, kbit, mbit or gbit)"),
            ))
        }
    };
    let number: f64 = number
        .parse()
        .map_err(|_| LinkSpecError::new(part, format!("`{number}` is not a number")))?;
    let bps = (number * scale).round();
    if !(MIN_RATE_BPS as f64..=MAX_RATE_BPS as f64).contains(&bps) {
        return Err(LinkSpecError::new(
            part,
            format!(
                "the rate must lie between {} and {}",
                fmt_rate(MIN_RATE_BPS),
                fmt_rate(MAX_RATE_BPS)
            ),
        ));
    }
    // In range, so the cast is exact.
    Ok(bps as u64)
}

fn parse_switch(part: &str, value: &str) -> Result<bool, LinkSpecError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "yes" | "on" | "true" => Ok(true),
        "no" | "off" | "false" => Ok(false),
        _ => Err(LinkSpecError::new(part, "expected yes or no")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn parses_every_part() {
        let spec: LinkSpec =
            "delay=25ms, jitter=5ms,loss=1%,rate=10mbit,queue=50ms,reorder=yes,outage=2s@5s,outage=20s@30s"
                .parse()
                .unwrap();
        assert_eq!(spec.delay, ms(25));
        assert_eq!(spec.jitter, ms(5));
        assert_eq!(spec.loss_percent, 1.0);
        assert_eq!(spec.rate_bps, Some(10_000_000));
        assert_eq!(spec.queue, ms(50));
        assert!(spec.reorder);
        assert_eq!(
            spec.outages,
            vec![
                Outage {
                    start: ms(5000),
                    duration: ms(2000)
                },
                Outage {
                    start: ms(30_000),
                    duration: ms(20_000)
                }
            ]
        );
        assert_eq!(spec.rtt(), ms(50));
    }

    #[test]
    fn every_part_is_optional() {
        let spec: LinkSpec = "".parse().unwrap();
        assert_eq!(spec, LinkSpec::default());
        assert!(spec.is_transparent());
        let spec: LinkSpec = "rate=1.5mbit".parse().unwrap();
        assert_eq!(spec.rate_bps, Some(1_500_000));
        assert_eq!(spec.delay, Duration::ZERO);
    }

    #[test]
    fn errors_name_the_part_and_say_why() {
        let cases = [
            ("delay=25", "delay=25", "not a duration"),
            ("loss=1", "loss=1", "`%` sign"),
            ("loss=100%", "loss=100%", "below 100%"),
            ("loss=-1%", "loss=-1%", "below 100%"),
            ("rate=10", "rate=10", "needs a unit"),
            ("rate=10mbps", "rate=10mbps", "bytes per second"),
            ("rate=1bit", "rate=1bit", "between 8kbit"),
            ("rate=10furlongs", "rate=10furlongs", "unknown rate unit"),
            ("delay=10s", "delay=10s", "at most 5s"),
            ("delay=5ms,jitter=6ms", "jitter=6ms", "may not exceed"),
            ("jitter=1ms", "jitter=1ms", "may not exceed"),
            ("color=red", "color=red", "unknown setting `color`"),
            ("delay", "delay", "name=value"),
            ("delay=1ms,delay=2ms", "delay=2ms", "given twice"),
            ("outage=2s", "outage=2s", "<duration>@<start>"),
            ("outage=0s@1s", "outage=0s@1s", "longer than 0"),
            ("queue=0s,rate=1mbit", "queue=0s", "queue limit"),
            ("reorder=maybe", "reorder=maybe", "yes or no"),
        ];
        for (text, part, reason) in cases {
            let err = text.parse::<LinkSpec>().unwrap_err();
            assert_eq!(err.part, part, "{text}: {err}");
            assert!(err.reason.contains(reason), "{text}: {err}");
            assert!(err.to_string().contains(part));
        }
    }

    #[test]
    fn display_round_trips() {
        for text in [
            "",
            "delay=25ms",
            "delay=75ms,rate=1500kbit,loss=1%",
            "delay=1s 500ms,jitter=3ms 250us,loss=0.25%,rate=8kbit,queue=1s,reorder=yes,outage=2s@5s,outage=20s@30s",
        ] {
            let spec: LinkSpec = text.parse().unwrap();
            let again: LinkSpec = spec.to_string().parse().unwrap();
            assert_eq!(spec, again, "{text} -> {spec}");
        }
        assert_eq!(
            "rate=1.5mbit,delay=75ms"
                .parse::<LinkSpec>()
                .unwrap()
                .to_string(),
            "delay=75ms,rate=1500kbit"
        );
    }

    #[test]
    fn toml_table_uses_the_same_grammar() {
        #[derive(Deserialize, Serialize)]
        struct Scenario {
            link: LinkSpec,
        }
        let s: Scenario = toml::from_str(
            "[link]\ndelay = \"25ms\"\nloss = \"1%\"\nrate = \"1.5mbit\"\noutages = [\"2s@5s\"]\n",
        )
        .unwrap();
        assert_eq!(
            s.link,
            "delay=25ms,loss=1%,rate=1.5mbit,outage=2s@5s"
                .parse()
                .unwrap()
        );
        let text = toml::to_string(&s).unwrap();
        let back: Scenario = toml::from_str(&text).unwrap();
        assert_eq!(back.link, s.link);

        let err = toml::from_str::<Scenario>("[link]\nloss = \"1\"\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("loss = \"1\""), "{err}");
        let err = toml::from_str::<Scenario>("[link]\nlatency = \"1ms\"\n")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("latency"), "{err}");
    }

    #[test]
    fn outage_windows() {
        let o: Outage = "2s@5s".parse().unwrap();
        assert!(!o.contains(ms(4999)));
        assert!(o.contains(ms(5000)));
        assert!(o.contains(ms(6999)));
        assert!(!o.contains(ms(7000)));
        assert_eq!(o.end(), ms(7000));
        assert_eq!(o.to_string(), "2s@5s");
        assert_eq!(serde_json::to_string(&o).unwrap(), "\"2s@5s\"");
        assert_eq!(serde_json::from_str::<Outage>("\"2s@5s\"").unwrap(), o);
        assert!(serde_json::from_str::<Outage>("\"2s\"").is_err());
    }

    proptest! {
        #[test]
        fn parser_never_panics(text in "\\PC{0,80}") {
            let _ = text.parse::<LinkSpec>();
            let _ = text.parse::<Outage>();
        }

        #[test]
        fn parser_never_panics_on_near_misses(
            parts in proptest::collection::vec(
                ("(delay|jitter|loss|rate|queue|reorder|outage|x)", "[0-9.]{0,6}(ms|s|us|%|bit|kbit|mbit|gbit|kbps|@|@1s|yes|)"),
                0..6,
            )
        ) {
            let text: Vec<String> = parts.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let text = text.join(",");
            if let Ok(spec) = text.parse::<LinkSpec>() {
                // Anything accepted is in range and survives a round trip.
                prop_assert!(spec.validate().is_ok());
                prop_assert_eq!(spec.to_string().parse::<LinkSpec>().unwrap(), spec);
            }
        }

        #[test]
        fn valid_specs_round_trip(
            delay_us in 0u64..5_000_000,
            jitter_frac in 0.0f64..=1.0,
            loss in 0.0f64..99.99,
            rate in proptest::option::of(MIN_RATE_BPS..MAX_RATE_BPS),
            queue_ms in 1u64..60_000,
            outages in proptest::collection::vec((0u64..86_400_000, 1u64..3_600_000), 0..3),
        ) {
            let delay = Duration::from_micros(delay_us);
            let spec = LinkSpec {
                delay,
                jitter: delay.mul_f64(jitter_frac),
                loss_percent: loss,
                rate_bps: rate,
                queue: ms(queue_ms),
                reorder: false,
                outages: outages.into_iter().map(|(s, d)| Outage { start: ms(s), duration: ms(d) }).collect(),
            };
            prop_assert!(spec.validate().is_ok());
            prop_assert_eq!(spec.to_string().parse::<LinkSpec>().unwrap(), spec.clone());
            let json = serde_json::to_string(&spec).unwrap();
            prop_assert_eq!(serde_json::from_str::<LinkSpec>(&json).unwrap(), spec);
        }
    }
}
